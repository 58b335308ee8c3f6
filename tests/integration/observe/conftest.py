"""The observe tests' fixtures (from ``kits.observe``): fake NVML, full scrape, no thread left behind."""

from kits.observe import _no_thread_left_behind, exposed_metric_names, fakenvml, full_scrape  # noqa: F401
