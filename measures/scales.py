"""The four scales as data: wording per language and cutoffs per age group.

The wording paraphrases the published forms; ORS/SRS/CORS/CSRS are licensed instruments
(Scott D. Miller and Barry L. Duncan): an organisation needs the authors' licence to use
them. Cutoffs are the defaults of statistics.md; organisations may override the ORS
cutoffs in their settings.
"""

from __future__ import annotations


def _t(da: str, en: str) -> dict[str, str]:
    return {"da": da, "en": en}


ORS_LOW = _t("Dårligt", "Poorly")
ORS_HIGH = _t("Godt", "Well")

SCALES: list[dict] = [
    {
        "code": "ORS",
        "name": _t("ORS – Hvordan har du det?", "ORS – How are you doing?"),
        "kind": "outcome",
        "age_groups": ["adult", "youth"],
        "cutoffs": {"adult": 25, "youth": 28},
        "items": [
            {
                "label": _t(
                    "Individuelt (personligt velbefindende)", "Individually (personal well-being)"
                ),
                "left": ORS_LOW,
                "right": ORS_HIGH,
            },
            {
                "label": _t(
                    "Interpersonelt (familie, nære relationer)",
                    "Interpersonally (family, close relationships)",
                ),
                "left": ORS_LOW,
                "right": ORS_HIGH,
            },
            {
                "label": _t(
                    "Socialt (arbejde, skole, venskaber)", "Socially (work, school, friendships)"
                ),
                "left": ORS_LOW,
                "right": ORS_HIGH,
            },
            {
                "label": _t(
                    "Generelt (generel følelse af velbefindende)",
                    "Overall (general sense of well-being)",
                ),
                "left": ORS_LOW,
                "right": ORS_HIGH,
            },
        ],
    },
    {
        "code": "SRS",
        "name": _t("SRS – Hvordan var samtalen i dag?", "SRS – How was today's session?"),
        "kind": "alliance",
        "age_groups": ["adult", "youth"],
        "cutoffs": {"all": 36},
        "items": [
            {
                "label": _t("Relation", "Relationship"),
                "left": _t(
                    "Jeg følte mig ikke hørt, forstået og respekteret",
                    "I did not feel heard, understood and respected",
                ),
                "right": _t(
                    "Jeg følte mig hørt, forstået og respekteret",
                    "I felt heard, understood and respected",
                ),
            },
            {
                "label": _t("Mål og emner", "Goals and topics"),
                "left": _t(
                    "Vi talte ikke om det, jeg gerne ville tale om",
                    "We did not talk about what I wanted to talk about",
                ),
                "right": _t(
                    "Vi talte om det, jeg gerne ville tale om",
                    "We talked about what I wanted to talk about",
                ),
            },
            {
                "label": _t("Tilgang eller metode", "Approach or method"),
                "left": _t(
                    "Behandlerens tilgang passer ikke til mig",
                    "The therapist's approach is not a good fit for me",
                ),
                "right": _t(
                    "Behandlerens tilgang passer godt til mig",
                    "The therapist's approach is a good fit for me",
                ),
            },
            {
                "label": _t("Generelt", "Overall"),
                "left": _t(
                    "Der manglede noget i samtalen i dag",
                    "Something was missing in today's session",
                ),
                "right": _t(
                    "Alt i alt var samtalen i dag rigtig for mig",
                    "Overall, today's session was right for me",
                ),
            },
        ],
    },
    {
        "code": "CORS",
        "name": _t("CORS – Hvordan har du det?", "CORS – How are you doing?"),
        "kind": "outcome",
        "age_groups": ["child"],
        "cutoffs": {"child": 32},
        "items": [
            {
                "label": _t("Mig (hvordan har jeg det?)", "Me (how am I doing?)"),
                "left": _t("☹", "☹"),
                "right": _t("☺", "☺"),
            },
            {
                "label": _t(
                    "Familie (hvordan går det derhjemme?)", "Family (how are things at home?)"
                ),
                "left": _t("☹", "☹"),
                "right": _t("☺", "☺"),
            },
            {
                "label": _t(
                    "Skole (hvordan går det i skolen?)", "School (how am I doing at school?)"
                ),
                "left": _t("☹", "☹"),
                "right": _t("☺", "☺"),
            },
            {
                "label": _t(
                    "Det hele (hvordan går det med alt?)", "Everything (how is everything going?)"
                ),
                "left": _t("☹", "☹"),
                "right": _t("☺", "☺"),
            },
        ],
    },
    {
        "code": "CSRS",
        "name": _t("CSRS – Hvordan var det i dag?", "CSRS – How was it today?"),
        "kind": "alliance",
        "age_groups": ["child"],
        "cutoffs": {"all": 36},
        "items": [
            {
                "label": _t("Lytte", "Listening"),
                "left": _t("Lyttede ikke altid til mig", "Did not always listen to me"),
                "right": _t("Lyttede til mig", "Listened to me"),
            },
            {
                "label": _t("Hvor vigtigt", "How important"),
                "left": _t(
                    "Det, vi talte om, var ikke vigtigt for mig",
                    "What we talked about was not really important to me",
                ),
                "right": _t(
                    "Det, vi talte om, var vigtigt for mig",
                    "What we talked about was important to me",
                ),
            },
            {
                "label": _t("Det vi lavede", "What we did"),
                "left": _t(
                    "Jeg kunne ikke lide det, vi lavede i dag", "I did not like what we did today"
                ),
                "right": _t("Jeg kunne lide det, vi lavede i dag", "I liked what we did today"),
            },
            {
                "label": _t("Alt i alt", "Overall"),
                "left": _t(
                    "Jeg ville ønske, vi lavede noget andet",
                    "I wish we could do something different",
                ),
                "right": _t(
                    "Jeg håber, vi gør det samme næste gang",
                    "I hope we do the same kind of things next time",
                ),
            },
        ],
    },
]


def load_scales(scale_model) -> None:  # type: ignore[no-untyped-def]
    """Create or update the four scales (used by the data migration)."""
    for spec in SCALES:
        scale_model.objects.update_or_create(
            code=spec["code"],
            defaults={k: v for k, v in spec.items() if k != "code"},
        )
