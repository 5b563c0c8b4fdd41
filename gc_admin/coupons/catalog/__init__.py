"""The catalogue (券种): coupon products — create, change, list, look up; the 券种管理 tab of 券库存."""
