from django.apps import AppConfig


class StatsConfig(AppConfig):
    name = "stats"
    verbose_name = "Statistik"

    def ready(self) -> None:
        from measures.signals import episode_data_changed

        from .tasks import on_episode_data_changed

        episode_data_changed.connect(
            on_episode_data_changed, dispatch_uid="stats.recompute_on_change"
        )
