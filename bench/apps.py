from django.apps import AppConfig
from django.conf import settings


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Benchmark baselines and data set"

    def ready(self) -> None:
        if getattr(settings, "BENCH_FANOUT_TIMINGS", False):
            from timelines.signals import fanout_batch_done

            from . import fanout_timings

            fanout_batch_done.connect(fanout_timings.record, dispatch_uid="bench_fanout_timings")
