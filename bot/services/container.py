"""The application services one running bot offers its front doors (Slack listeners, schedules)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.access.gate import AccessGate
from bot.runbooks.catalogue import Catalogue
from bot.services.alerts import AlertService
from bot.services.approval_desk import ApprovalDesk
from bot.services.audit_trail import AuditTrail
from bot.services.diagnoses import DiagnosisService
from bot.services.incidents import IncidentService
from bot.services.reviews import ReviewService
from bot.services.timeline import TimelineService
from bot.slack.client import InstrumentedWebClient
from bot.tasks import TaskTracker


@dataclass(frozen=True)
class Services:
    catalogue: Catalogue
    diagnoses: DiagnosisService
    approvals: ApprovalDesk
    incidents: IncidentService
    timeline: TimelineService
    reviews: ReviewService
    tasks: TaskTracker
    client: InstrumentedWebClient
    audit: AuditTrail
    # Admission (guests, other organisations, shared channels) and the reading policy.
    access: AccessGate
    # Alert groups: cards, diagnosis, incidents, the card's buttons (issue #18).
    alerts: AlertService
