"""Danish short dates for tables: "4. okt 2026" (Django's "j. M Y" title-cases the month,
"4. Okt 2026", which is not Danish). Everything else falls back to Django's Danish
formats."""

SHORT_DATE_FORMAT = "j. b Y"
SHORT_DATETIME_FORMAT = "j. b Y H:i"
