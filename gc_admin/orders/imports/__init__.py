"""Third-party order import (第三方订单导入): orders of other channels, mapped per source, de-duplicated."""
