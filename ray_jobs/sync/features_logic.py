"""Feature decisions of the export (pure): smoothing, recency, segments, k-anonymity.

The Spark job (`export_features.py`) computes the same formulas as column expressions from
the constants here; unit tests pin the formulas on plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

DAY_US = 86_400_000_000
# (upper bound in days since the last event, bucket name); anything older is "30d+".
RECENCY_BUCKETS: tuple[tuple[int, str], ...] = ((1, "0-1d"), (7, "1-7d"), (30, "7-30d"))
OLDEST_BUCKET = "30d+"
# Activity tiers by impressions: (minimum impressions, tier), highest first.
ACTIVITY_TIERS: tuple[tuple[int, str], ...] = ((50, "heavy"), (5, "regular"), (0, "light"))
SUPPRESSED = "other"
UNKNOWN_REGION = "ZZ"  # ISO 3166 user-assigned code for "unknown"
UNKNOWN_LANGUAGE = "und"  # BCP 47 "undetermined"


def prior_ctr(total_clicks: int, total_impressions: int) -> float:
    """The global CTR every user's CTR is shrunk towards (0 when there is no traffic)."""
    return total_clicks / total_impressions if total_impressions > 0 else 0.0


def smoothed_ctr(clicks: int, impressions: int, prior: float, strength: float) -> float:
    """Beta-prior smoothing: (clicks + prior*m) / (impressions + m). A user with no
    impressions gets the prior; with many, their own CTR."""
    return (clicks + prior * strength) / (impressions + strength)


def recency_bucket(last_event_us: int, as_of_us: int) -> str:
    age_days = (as_of_us - last_event_us) / DAY_US
    for upper, name in RECENCY_BUCKETS:
        if age_days < upper:
            return name
    return OLDEST_BUCKET


def activity_tier(impressions: int) -> str:
    for minimum, tier in ACTIVITY_TIERS:
        if impressions >= minimum:
            return tier
    return ACTIVITY_TIERS[-1][1]


def primary_language(language_code: str | None) -> str:
    """ "en-GB" -> "en"; a finer tag would make segments smaller without helping ranking."""
    if not language_code:
        return UNKNOWN_LANGUAGE
    return language_code.split("-")[0].lower() or UNKNOWN_LANGUAGE


def segment_name(region_code: str | None, language_code: str | None, tier: str) -> str:
    """region:language:tier, e.g. "DE:de:regular"."""
    region = (region_code or "").upper() or UNKNOWN_REGION
    return f"{region}:{primary_language(language_code)}:{tier}"


def kept_segments(users_per_segment: Mapping[str, int], k: int) -> set[str]:
    """Segments with at least k users; the others are published as SUPPRESSED."""
    if k < 2:
        raise ValueError(f"k ({k}) must be >= 2")
    return {s for s, n in users_per_segment.items() if n >= k and s != SUPPRESSED}


def personalization_allowed(consents: object) -> bool:
    """False only when the person explicitly refused ads personalised with behavioural data
    (a CONTACT_CHANNEL_PERSONALIZED_ADS consent with granted=false); True otherwise.

    `consents` is the profile's stored list: [{"channel", "granted", "update_us"}, ...]. The
    latest entry for the channel wins.
    """
    if not isinstance(consents, list):
        return True
    entries = [
        c
        for c in consents
        if isinstance(c, dict) and c.get("channel") == "CONTACT_CHANNEL_PERSONALIZED_ADS"
    ]
    if not entries:
        return True
    latest = max(entries, key=lambda c: int(c.get("update_us", 0)))
    return bool(latest.get("granted", False))
