"""工作台 (home): the figures each role may see (the page itself is ``gc_admin.ui.home``)."""
