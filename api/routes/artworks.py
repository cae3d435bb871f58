"""/artworks: list and search, read, add, change and remove artwork records."""

from __future__ import annotations

import copy

from flask import Response, request, url_for
from werkzeug.http import generate_etag

from api.endpoint import Resource, json_response, search_cost
from api.problems import ApiProblem, bad_request, not_found
from api.runtime import current_service, runtime
from api.schemas import FIELD_DEFAULTS, Artwork, ArtworkPage, ArtworkPatch, ListParams, NewArtwork
from critic.records import Artwork as ArtworkRecord
from critic.service import Service
from critic.store import Outcome
from index.recommend import SimilarQuery

artworks = Resource("artworks", tag="artworks")
#: A PATCH without If-Match merges onto the stored record again when another write got there first.
PATCH_ATTEMPTS = 3


def _stored(service: Service, artwork_id: str) -> ArtworkRecord:
    record = service.store.get(artwork_id)
    if record is None:
        raise not_found(f"unknown artwork id {artwork_id!r}")
    return record


@artworks.get(
    "/artworks",
    summary="List artworks, or search them by text",
    description="Without q: the records meeting the filters, in catalog order, with a total. With q: the "
    "records ranked by how well they match the text (a style-latent search), each with its score.",
    query=ListParams,
    response=ArtworkPage,
    cached=True,
    cost=lambda arguments: search_cost(arguments["query"].q, arguments["query"].where),
)
def list_artworks(query: ListParams) -> dict:
    service = current_service()
    where = query.filter_expressions()
    asked = {"q": query.q, "where": where, "limit": query.limit, "offset": query.offset}
    if query.q is not None:
        found = service.similar(SimilarQuery(text=query.q, k=query.limit, offset=query.offset, where=where))
        hits = [(service.store.get(hit.id), hit.score) for hit in found.results]
        results = [{**record.to_dict(), "score": round(score, 4)} for record, score in hits if record is not None]
        return {"query": asked, "results": results, "next_offset": found.next_offset, "total": None}
    matching = runtime().catalog(service).select(where)
    page = matching[query.offset : query.offset + query.limit]
    more = query.offset + query.limit < len(matching)
    return {
        "query": asked,
        "results": [{**record.to_dict(), "score": None} for record in page],
        "next_offset": query.offset + query.limit if more else None,
        "total": len(matching),
    }


@artworks.get("/artworks/<artwork_id>", summary="One artwork record", response=Artwork, cached=True, errors=(404,))
def get_artwork(artwork_id: str) -> dict:
    return _stored(current_service(), artwork_id).to_dict()


@artworks.post(
    "/artworks",
    summary="Add an artwork",
    description="Answers 201 once the record is committed to the database; it is embedded, encoded and "
    "searchable by then. An id that exists already is a 409: PATCH it instead.",
    body=NewArtwork,
    response=Artwork,
    status=201,
    write=True,
    errors=(409,),
)
def add_artwork(body: NewArtwork) -> Response:
    service = current_service()
    record = ArtworkRecord.from_dict(body.model_dump())
    # Checked and stored in one transaction: of two racing POSTs of one id, the second gets the 409.
    if service.store.get(body.id) is not None or service.create(record) is Outcome.EXISTS:
        raise ApiProblem(409, "Conflict", f"artwork {body.id!r} exists; PATCH or DELETE it", kind="exists", field="id")
    location = url_for(".get_artwork", artwork_id=record.id)
    return json_response(record.to_dict(), 201, {"Location": location})


def _merged(record: ArtworkRecord, patch: ArtworkPatch) -> ArtworkRecord:
    data = record.to_dict()
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            data[name] = copy.deepcopy(FIELD_DEFAULTS[name])
        elif name == "metadata":
            merged = {**data["metadata"], **value}
            data["metadata"] = {k: v for k, v in merged.items() if v is not None}
        else:
            data[name] = value
    start, end = data["year_start"], data["year_end"]
    if start is not None and end is not None and start > end:
        raise bad_request(f"year_start {start} would be after year_end {end}", field="year_start", kind="validation")
    return ArtworkRecord.from_dict(data)


@artworks.patch(
    "/artworks/<artwork_id>",
    summary="Change fields of an artwork",
    description="A JSON merge patch: fields left out stay as they are, null resets a field, metadata is merged "
    "key by key. Send If-Match with the ETag of a GET to refuse the change (412) if the record moved on.",
    body=ArtworkPatch,
    response=Artwork,
    write=True,
    errors=(404, 409, 412),
)
def patch_artwork(artwork_id: str, body: ArtworkPatch) -> dict:
    service = current_service()
    for _ in range(PATCH_ATTEMPTS):
        record = _stored(service, artwork_id)
        if request.if_match and not request.if_match.contains(_etag(record)):
            raise _changed()
        updated = _merged(record, body)
        # Compared and swapped in one transaction: a DELETE that won gives 404 here, never a resurrection.
        outcome = service.replace(updated, expected=record)
        if outcome is Outcome.DONE:
            return updated.to_dict()
        if outcome is Outcome.MISSING:
            raise not_found(f"artwork {artwork_id!r} was deleted")
        if request.if_match:
            raise _changed()  # the version the client saw is gone
        # Without If-Match the patch applies to whatever is stored: merge again onto the newer version.
    raise ApiProblem(409, "Conflict", f"artwork {artwork_id!r} kept changing; retry", kind="busy-record")


def _etag(record: ArtworkRecord) -> str:
    return generate_etag(json_response(record.to_dict()).get_data())


def _changed() -> ApiProblem:
    detail = "the artwork changed since the ETag given in If-Match"
    return ApiProblem(412, "Precondition Failed", detail, kind="changed")


@artworks.delete("/artworks/<artwork_id>", summary="Remove an artwork", status=204, write=True, errors=(404,))
def delete_artwork(artwork_id: str) -> Response:
    if not current_service().delete(artwork_id):
        raise not_found(f"unknown artwork id {artwork_id!r}")
    return Response(status=204)
