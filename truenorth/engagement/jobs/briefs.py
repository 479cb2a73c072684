"""Engagement background work: briefs — the brief's PDF made on the worker (`engagement.briefs.pdf`),
and a daily purge of the PDFs past their keeping time."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from truenorth.engagement.services import briefs as services
from truenorth.engagement.services.briefs_render import brief_pdf
from truenorth.jobs.models import Job
from truenorth.jobs.services import Progress, acting_membership, register


@register(services.PDF_KIND)
def run_brief_pdf(job: Job, progress: Progress) -> dict[str, Any]:
    """The job: build the brief as the member who asked (still a member) and store its PDF for them."""
    membership, actor = acting_membership(job)
    progress(0, 2)
    brief = services.build_brief(membership, int(job.params["product_id"]))
    progress(1, 2)
    pdf = brief_pdf(brief)
    document = services.store_document(membership, actor, brief.product_id, pdf)
    progress(2, 2)
    slug = job.organisation.slug
    return {
        "document": document.pk,
        "product": brief.product_id,
        "size": document.size,
        "expires_at": document.expires_at.isoformat(),
        "summary": f"The brief of “{brief.product}” as a PDF ({document.size:,} bytes).",
        "link": reverse("engagement:brief_document", args=(slug, document.pk)),
        "link_text": "Download the PDF",
        "api": reverse("api:get_brief_document", kwargs={"slug": slug, "document_id": document.pk}),
    }


@db_periodic_task(crontab(minute="17", hour="3"))
@lock_task("truenorth-purge-brief-documents")
def purge_brief_documents() -> int:
    return services.purge_documents()
