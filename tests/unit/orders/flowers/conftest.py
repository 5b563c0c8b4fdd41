import pytest

from tests.unit.orders.flowers.support import flower_shop


@pytest.fixture
def shop(api, make_staff):
    return flower_shop(api, make_staff)
