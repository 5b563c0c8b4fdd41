"""The house's layers, checked on the source (DESIGN.md §2).

* no import cycles between modules, function-level imports included;
* ``core/``, ``db.py`` and ``config.py`` import no feature;
* the ``ui/`` shell imports no feature except ``accounts`` (who is signed in);
* a feature imports only features below it in :data:`FEATURES`, never one above;
* nothing imports the wiring modules (they import everything).

A new upward import or cycle fails here with the offending module named.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3] / "gc_admin"
BASE = ("config", "db", "core")
SHELL = "ui"
# Bottom to top: a feature may import the ones before it.
FEATURES = ("audit", "programmes", "accounts", "exports", "integrations", "partners", "users", "coupons", "payments", "orders", "claims",
            "customers", "home")
WIRING = ("gc_admin", "api", "cli", "__main__", "demo", "jobs", "tasks", "models")


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: pathlib.Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        for name in names:
            if name.startswith("gc_admin"):
                resolved = _resolve(name)
                if resolved and resolved != module:
                    found.add(resolved)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gc_admin"


def test_every_module_belongs_to_a_known_layer() -> None:
    rooms = {_room(m) for m in MODULES}
    unknown = rooms - set(BASE) - {SHELL} - set(FEATURES) - set(WIRING)
    assert not unknown, f"place these in a layer in tests/unit/core/test_layers.py: {sorted(unknown)}"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def _allowed(src: str, dst: str) -> bool:
    a, b = _room(src), _room(dst)
    if a == b or a in WIRING:
        return True
    if b in WIRING:
        return False
    if a in BASE:
        return b in BASE
    if a == SHELL:
        return b in BASE or b == "accounts"
    if b in BASE or b == SHELL:
        return True
    return FEATURES.index(b) < FEATURES.index(a)


VIOLATIONS = sorted((src, dst) for src, dsts in GRAPH.items() for dst in dsts if not _allowed(src, dst))


def test_layers_run_one_way() -> None:
    assert not VIOLATIONS, "upward imports:\n" + "\n".join(f"  {s} -> {d}" for s, d in VIOLATIONS)


@pytest.mark.parametrize(("src", "dst", "ok"), [
    ("gc_admin.core.http", "gc_admin.users.service", False),
    ("gc_admin.ui.layout", "gc_admin.orders.badge", False),
    ("gc_admin.ui.auth", "gc_admin.accounts.service", True),
    ("gc_admin.payments.ledger", "gc_admin.orders.models", False),
    ("gc_admin.orders.flows", "gc_admin.payments.ledger", True),
    ("gc_admin.coupons.wallet", "gc_admin.api", False),
])
def test_the_rule_itself(src: str, dst: str, ok: bool) -> None:
    assert _allowed(src, dst) is ok


def test_features_above_users_register_their_phone_sign_in_hooks() -> None:
    """users may not import coupons, so coupons registers what happens at a phone sign-in; the
    app (which imports every feature) must have it."""
    import gc_admin.api  # noqa: F401  (the wiring imports every feature)
    from gc_admin.coupons.wallet.service import claim_for_phone
    from gc_admin.users.service import PHONE_SIGNED_IN

    assert claim_for_phone in PHONE_SIGNED_IN


def _within(prefixes: tuple[str, ...]) -> dict[str, set[str]]:
    return {m: {d for d in deps if d.startswith(prefixes)} for m, deps in GRAPH.items() if m.startswith(prefixes)}


def test_payments_sits_below_orders_with_leaf_ledger_and_balances() -> None:
    """Issue 8: payments imports nothing from orders (orders builds on payments); the ledger and the
    balances are leaves of payments; orders and payments together form no cycle (pricing read balances
    from payments, payments read FEN_PER_POINT from pricing and called private order functions)."""
    money = _within(("gc_admin.orders", "gc_admin.payments"))
    upward = sorted((m, d) for m, deps in money.items() if m.startswith("gc_admin.payments")
                    for d in deps if d.startswith("gc_admin.orders"))
    assert upward == []
    assert money["gc_admin.payments.ledger"] <= {"gc_admin.payments.models"}
    assert money["gc_admin.payments.balances"] <= {"gc_admin.payments.models", "gc_admin.payments.ledger"}
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def cycle_from(m: str, path: list[str]) -> list[str] | None:
        seen[m] = 1
        for d in sorted(money.get(m, ())):
            if seen.get(d) == 1:
                return path + [m, d]
            if d not in seen and (found := cycle_from(d, path + [m])):
                return found
        seen[m] = 2
        return None

    cycles = [c for m in sorted(money) if m not in seen and (c := cycle_from(m, []))]
    assert cycles == []
