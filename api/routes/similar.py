"""Style-similar artworks: to one artwork (GET, cacheable) or to a text or liked/disliked examples (POST)."""

from __future__ import annotations

from api.endpoint import Resource, search_cost
from api.runtime import current_service
from api.schemas import Recommendations, SimilarBody, SimilarParams
from index.filters import parse_where
from index.recommend import SimilarQuery

similar = Resource("similar", tag="similar")


@similar.get(
    "/artworks/<artwork_id>/similar",
    summary="Artworks in the style of this one",
    description="Ranked by cosine similarity of the style latents; filters act inside the search, so k "
    "results come back when that many match. Each result says why it came up.",
    query=SimilarParams,
    response=Recommendations,
    cached=True,
    errors=(404,),
    cost=lambda arguments: search_cost(None, arguments["query"].where),
)
def similar_to_artwork(artwork_id: str, query: SimilarParams) -> dict:
    asked = SimilarQuery(
        id=artwork_id,
        k=query.k,
        offset=query.offset,
        where=query.filter_expressions(),
        exclude=query.exclude,
        diversity=query.diversity,
        min_score=query.min_score,
        exclude_same_creator=query.exclude_same_creator,
        max_per_creator=query.max_per_creator,
    )
    return current_service().similar(asked).to_json()


@similar.post(
    "/similar",
    summary="Artworks similar to a text, or like and unlike examples",
    description="Give exactly one of id, text and like (ids, or {id: weight}); unlike pushes away from "
    "its examples. Filters as {field: value or [values]} and/or where expressions.",
    body=SimilarBody,
    response=Recommendations,
    errors=(404,),
    cost=lambda arguments: search_cost(arguments["body"].text, [*arguments["body"].filters, *arguments["body"].where]),
)
def similar_to_body(body: SimilarBody) -> dict:
    asked = SimilarQuery(
        id=body.id,
        text=body.text,
        like=body.like or (),
        unlike=body.unlike or (),
        k=body.k,
        offset=body.offset,
        where=parse_where(body.filters) + parse_where(body.where),
        exclude=body.exclude,
        diversity=body.diversity,
        min_score=body.min_score,
        exclude_same_creator=body.exclude_same_creator,
        max_per_creator=body.max_per_creator,
    )
    return current_service().similar(asked).to_json()
