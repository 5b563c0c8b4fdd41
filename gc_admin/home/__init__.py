"""工作台 (home): the figures each role may see (service), its page and state."""
