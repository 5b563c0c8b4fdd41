"""导出: the staff API of the exports built by the ``exports.build`` task (the machinery: :mod:`gc_admin.core.export_jobs`,
in core because the list pages' shared export handler goes through it)."""
