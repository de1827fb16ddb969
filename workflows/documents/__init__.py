"""Grant documents: agreements, publicity notice, decision record (PDF bytes). Pure functions
of their ctx dicts; the engine stores the bytes."""
from .clauses import DocumentError, InvalidClause, MissingClause
from .fetcher import RefusedURL, RestrictedURLFetcher
from .render import (
    render_agreement,
    render_decision_record,
    render_distribution_notice,
    render_leader_notice,
    render_price_notice,
    render_publicity_notice,
    render_supplementary_agreement,
)

__all__ = [
    "DocumentError", "InvalidClause", "MissingClause", "RefusedURL", "RestrictedURLFetcher",
    "render_agreement", "render_decision_record", "render_distribution_notice", "render_leader_notice",
    "render_price_notice", "render_publicity_notice", "render_supplementary_agreement",
]
