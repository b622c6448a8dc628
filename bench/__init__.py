"""The benchmark: the ``make bench`` driver (``python -m bench.run``), its load
generator and report, and a Django app of its own -- the baseline endpoints and
the ``seed_bench`` command -- that only ``bench.settings`` installs, so the
product's settings can never serve or ship them."""
