"""English short dates for tables: "4 Oct 2026" (no Danish day period)."""

SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y H:i"
