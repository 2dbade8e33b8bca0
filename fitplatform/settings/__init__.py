"""Settings package: ``base`` (production and embedded, read from the environment) and
``test``. ``DEBUG`` is off unless ``DJANGO_DEBUG=true``."""
