"""A third-party designated-driver (代驾) platform: signing, the httpx client, the local simulator."""
