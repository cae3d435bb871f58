"""Critiques and descriptions drafted for an artwork of the collection, or for one given as text."""

from __future__ import annotations

from flask import request

from api.endpoint import Resource
from api.problems import bad_request, not_found
from api.runtime import current_service
from api.schemas import Critique, CritiqueBody, CritiqueParams, Description, DescriptionBody
from critic.records import Artwork
from critic.service import Service
from critic.writer import WriterInputError, artwork_from_text

critiques = Resource("critiques", tag="critiques")


def _subject(service: Service, body: CritiqueBody | DescriptionBody) -> Artwork:
    if body.id is not None:
        record = service.store.get(body.id)
        if record is None:
            raise not_found(f"unknown artwork id {body.id!r}")
        return record
    facts = body.metadata.model_dump(exclude_unset=True) if body.metadata is not None else None
    try:
        return artwork_from_text(body.text, facts)
    except WriterInputError as exc:
        raise bad_request(str(exc), field="text") from None


def _critique_cost(arguments: dict) -> str:
    """A current pre-generated critique (`critic critique --all`) is read, not written: it costs a read and takes
    no generation slot, so a flood of generations does not hold it up. (Should it go stale before the view runs,
    that one critique is written without a slot.)"""
    service = current_service()
    record = service.store.get(request.view_args["artwork_id"])
    query = arguments["query"]
    if record is not None and service.writing.stored(record, query.tone, query.seed) is not None:
        return "read"
    return "generation"


@critiques.get(
    "/artworks/<artwork_id>/critique",
    summary="A critique of this artwork",
    description="Sections: what it is, a drafted description, style and technique, comparisons with its "
    "nearest neighbours, an assessment; the evidence lists the fields and neighbour ids used.",
    query=CritiqueParams,
    response=Critique,
    cached=True,
    errors=(404,),
    cost=_critique_cost,
)
def critique_artwork(artwork_id: str, query: CritiqueParams) -> dict:
    service = current_service()
    record = service.store.get(artwork_id)
    if record is None:
        raise not_found(f"unknown artwork id {artwork_id!r}")
    return service.critique(record, query.tone, query.seed).to_json()


@critiques.post(
    "/critiques",
    summary="A critique of an artwork, by id or given as text and metadata",
    body=CritiqueBody,
    response=Critique,
    errors=(404,),
    cost="generation",
)
def critique(body: CritiqueBody) -> dict:
    service = current_service()
    return service.critique(_subject(service, body), body.tone, body.seed).to_json()


@critiques.post(
    "/descriptions",
    summary="A drafted description, fact-checked against the record",
    body=DescriptionBody,
    response=Description,
    errors=(404,),
    cost="generation",
)
def describe(body: DescriptionBody) -> dict:
    service = current_service()
    record = _subject(service, body)
    draft = service.describe(record, body.seed)
    return {"id": record.id, "text": draft.text, "evidence": draft.evidence()}
