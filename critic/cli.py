"""The `critic` command line. Bad input exits 2 with one readable line; success exits 0."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from critic.home import Home

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad input to a command, reported as one line."""


def _home_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="build directory (default: $CRITIC_HOME or the user data directory)")


def cmd_build(args: argparse.Namespace) -> int:
    from critic.build import build
    from critic.corpus import parse_mapping

    if args.map and not args.catalog:
        raise UsageError("--map needs --catalog (the bundled collection has its own mapping)")
    ray_options = {k: v for k in ("address", "shard_size", "sample_size", "workers") if (v := getattr(args, k))}
    if ray_options and args.engine != "ray":
        raise UsageError(f"--{next(iter(ray_options)).replace('_', '-')} needs --engine ray")
    engine = _ray_engine()(**ray_options) if args.engine == "ray" else None
    info = build(
        Home.resolve(args.home), args.catalog, parse_mapping(args.map), limit=args.limit, writer=not args.no_writer,
        engine=engine,
    )
    if args.json:
        print(json.dumps(info, indent=1))
    return 0


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return int(value)


def _ray_engine() -> type:
    try:
        from critic.build_ray import RayEngine
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"--engine ray needs the scale extra ({exc.name} is missing): pip install 'art-critic[scale]'"
        ) from exc
    return RayEngine


def cmd_info(args: argparse.Namespace) -> int:
    home = Home.resolve(args.home)
    info = home.read_info()
    if not info:
        raise UsageError(f"nothing built in {home.root}: run `critic build`")
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    side = next((name for name in ("validation", "test") if info["vae"].get(name)), None)
    print(f"home:        {home.root}")
    print(f"collection:  {info['artworks']} artworks ({info['with_description']} described) from {info['source']}")
    print(f"split:       {info['train']} fit / {info.get('validation', 0)} validation / {info['test']} test "
          "(by creator)")
    print(f"embeddings:  {info['embedding_model']} ({info['embedding_dim']}-d)")
    if side:
        vae = info["vae"][side]
        print(f"style VAE:   {info['latent_dim']}-d latent, {vae['active_units']} active units, {side} ELBO "
              f"{vae['elbo']:.1f} (recon {vae['recon']:.1f}, KL {vae['kl']:.1f})")
        accuracy = ", ".join(f"{k} {v:.2f}" for k, v in vae["attribute_accuracy"].items())
        print(f"attributes:  {side} accuracy {accuracy or 'none (no label to learn)'}")
    if info.get("index_mix"):
        mix = info["index_mix"]
        print(f"index:       latent weight {mix['latent_weight']:.2f}: {mix['reason']}")
    print(f"built at:    {info['built_at']} in {info['timings']['total_s']:.0f} s")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from critic.service import Service
    from index.recommend import SimilarQuery

    sources = [bool(args.id), bool(args.text), bool(args.like)]
    if sum(sources) != 1:
        raise UsageError("give exactly one of an artwork ID, --text or --like")
    query = SimilarQuery(
        id=args.id,
        text=args.text,
        like=args.like or (),
        unlike=args.unlike or (),
        k=args.k,
        offset=args.offset,
        where=args.where or (),
        exclude=args.exclude or (),
        diversity=args.diverse,
        min_score=args.min_score,
        exclude_same_creator=args.other_creators,
        max_per_creator=args.max_per_creator,
    )
    result = Service.load(Home.resolve(args.home), log=lambda _: None).recommender.search(query).to_json()
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
        return 0
    for rank, hit in enumerate(result["results"], start=query.offset + 1):
        creators = "; ".join(hit["creators"]) or "unknown maker"
        print(f"{rank:>3}. {hit['score']:.3f}  [{hit['id']}] {hit['title']} ({creators})")
        for reason in hit["why"]:
            print(f"            - {reason}")
    if not result["results"]:
        print("no artwork matches")
    elif result["next_offset"] is not None:
        print(f"more: --offset {result['next_offset']}")
    return 0


def _built_style(home: Home):
    """The store's records and the home's style model, or a one-line error when nothing is built."""
    from critic.embed import MODEL_ID
    from critic.store import ArtworkStore
    from critic.style_model import load_style_model

    if not home.read_info():
        raise UsageError(f"nothing built in {home.root}: run `critic build`")
    return ArtworkStore(home.store_location).all(), load_style_model(home.vae_dir, expect={"embedding_model": MODEL_ID})


def _cached_embedder(home: Home):
    from critic.embed import EmbeddingCache, cached_embedder

    return cached_embedder(EmbeddingCache(home.cache_path))


def cmd_train(args: argparse.Namespace) -> int:
    from critic.writer.protocol import ensure_writer
    from critic.writer.train import WriterTrainConfig

    home = Home.resolve(args.home)
    records, style = _built_style(home)
    config = WriterTrainConfig(**({"epochs": args.epochs} if args.epochs else {}))
    info = ensure_writer(
        home.writer_dir, records, style, style.meta["data_hash"], _cached_embedder(home),
        config, force=True, log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(f"writer: {info['parameters']:,} parameters trained on {info['training_descriptions']} descriptions "
              f"in {info['seconds']:.0f} s (validation perplexity {info['validation_perplexity']:.1f}); "
              f"saved to {home.writer_dir}")
    return 0


def _eval_writer(args: argparse.Namespace) -> int:
    from critic.embed import MODEL_ID, EmbeddingCache, memory_embedder
    from critic.writer import load_writer
    from critic.writer.evaluate import format_report
    from critic.writer.protocol import evaluate_writer_on_split

    home = Home.resolve(args.home)
    records, style = _built_style(home)
    model = load_writer(home.writer_dir, latent_dim=style.latent_dim, embedding_model=MODEL_ID)
    # Held-out metadata-only texts and drafts are embedded in memory: embeddings.sqlite keeps the collection's texts.
    cache = EmbeddingCache(home.cache_path)
    result = evaluate_writer_on_split(
        records, style, model, memory_embedder(cache, maxsize=50_000), memory_embedder(cache),
        drafters=args.drafter, limit=args.limit or 150, fluency_samples=args.fluency_samples, seed=args.seed,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, indent=1, ensure_ascii=False) if args.json else format_report(result))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from critic.eval_recommend import evaluate_recommendations, format_tables

    if args.what == "writer":
        return _eval_writer(args)
    home = Home.resolve(args.home)
    if not home.read_info():
        raise UsageError(f"nothing built in {home.root}: run `critic build`")
    log = (lambda _: None) if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    result = evaluate_recommendations(home, side=args.side, k=args.k, log=log)
    print(json.dumps(result, indent=1) if args.json else format_tables(result))
    return 0


def _writing_subject(args: argparse.Namespace):
    """The service's writer and the artwork to write about: a collection id, or a new one given as text."""
    from critic.service import Service
    from critic.writer import artwork_from_text
    from critic.writing import Writing
    from index.errors import UnknownArtworkError

    if (args.id is None) == (args.text is None):
        raise UsageError("give an artwork ID or --text, not both")
    service = Service.load(Home.resolve(args.home), log=lambda _: None)
    if args.text:
        metadata = {"title": args.title} if args.title else {}
        return Writing(service), artwork_from_text(args.text, metadata)
    record = service.store.get(args.id)
    if record is None:
        raise UnknownArtworkError(f"unknown artwork id {args.id!r}")
    return Writing(service), record


def _tone(value: str) -> str:
    """The writer's own check (critic.writer.inputs.TONES), run by argparse: imported only for critique."""
    from critic.writer.inputs import WriterInputError, check_tone

    try:
        return check_tone(value)
    except WriterInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pregenerate(args: argparse.Namespace) -> int:
    from critic.pregenerate import LocalEngine, RayEngine, pregenerate

    if args.id is not None or args.text is not None:
        raise UsageError("--all writes for the whole collection: give no artwork ID or --text")
    if args.address and args.engine != "ray":
        raise UsageError("--address needs --engine ray")
    home = Home.resolve(args.home)
    if not home.read_info():
        raise UsageError(f"nothing built in {home.root}: run `critic build`")
    if args.engine == "ray":
        try:
            import ray  # noqa: F401
        except ModuleNotFoundError:
            missing = "--engine ray needs the scale extra (ray is missing): pip install 'art-critic[scale]'"
            raise UsageError(missing) from None
        engine = RayEngine(args.address, args.workers)
    else:
        engine = LocalEngine(args.workers or 1)
    tones = list(dict.fromkeys(args.tone or ["critique"]))
    report = pregenerate(home, tones, args.seed, engine, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(report.to_json(), indent=1) if args.json else report.summary())
    return 0 if report.failed == 0 else 1


def cmd_critique(args: argparse.Namespace) -> int:
    if args.all:
        return _pregenerate(args)
    if args.tone and len(args.tone) > 1:
        raise UsageError("one --tone for one critique (several only with --all)")
    if args.engine != "local" or args.workers or args.address:
        raise UsageError("--engine, --workers and --address go with --all")
    writing, record = _writing_subject(args)
    critique = writing.critique(record, (args.tone or ["critique"])[0], args.seed).to_json()
    if args.json:
        print(json.dumps(critique, indent=1, ensure_ascii=False))
        return 0
    for section in critique["sections"]:
        print(f"## {section['title']}\n{section['text']}\n")
    print(f"(draft, {critique['tone']} tone; evidence: {json.dumps(critique['evidence'], ensure_ascii=False)})")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    writing, record = _writing_subject(args)
    draft = writing.describe(record, args.seed)
    if args.json:
        print(json.dumps({"id": record.id, "text": draft.text, "evidence": draft.evidence()}, indent=1))
    else:
        print(draft.text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from api.serve import serve

    serve(Home.resolve(args.home), host=args.host, port=args.port, workers=args.workers, threads=args.threads)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from critic.keys import create_key, list_keys, revoke_key

    home = Home.resolve(args.home)
    if args.action == "create":
        if not args.name:
            raise UsageError("keys create needs a NAME")
        print(create_key(home, args.name, args.scope))
        print(
            f"{args.scope} key {args.name!r} created: send it as the X-API-Key header; it is shown only once",
            file=sys.stderr,
        )
    elif args.action == "revoke":
        if not args.name:
            raise UsageError("keys revoke needs a NAME")
        if not revoke_key(home, args.name):
            raise UsageError(f"no active key named {args.name!r}")
        print(f"key {args.name!r} revoked", file=sys.stderr)
    else:
        for key in list_keys(home):
            revoked = f"\trevoked {key.revoked_at}" if key.revoked_at else ""
            print(f"{key.name}\t{key.scope}\tcreated {key.created_at}{revoked}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from critic.repair import repair

    repair(Home.resolve(args.home), log=lambda line: print(line, flush=True))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "critique": cmd_critique,
    "describe": cmd_describe,
    "serve": cmd_serve,
    "keys": cmd_keys,
    "repair": cmd_repair,
    "build": cmd_build,
    "train": cmd_train,
    "info": cmd_info,
    "similar": cmd_similar,
    "eval": cmd_eval,
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="critic", description="Style-similar artworks and drafted critiques.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="import a catalog (default: the bundled Walters collection), embed, train, index")
    p.add_argument("--catalog", help="CSV, JSON or JSONL catalog of another museum")
    p.add_argument("--map", action="append", help="canonical=column,... (e.g. title=Title,creators=Artist)")
    p.add_argument("--limit", type=int, help="import only the first N records (for a quick trial)")
    p.add_argument("--json", action="store_true", help="print the build info as JSON")
    p.add_argument("--no-writer", action="store_true", help="skip training the description writer")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: embed and encode on a Ray cluster, in resumable Parquet shards (README)")
    p.add_argument("--address", help="ray: the cluster to join, e.g. HEAD:6379 or auto (default: start a local Ray)")
    p.add_argument("--shard-size", type=_positive, help="ray: records per shard (default 10,000)")
    p.add_argument("--sample-size", type=_positive, help="ray: records per split side the VAE trains on (100,000)")
    p.add_argument("--workers", type=_positive,
                   help="ray: at most N actors (default one per CPU); a local Ray starts with N CPUs")
    _home_option(p)

    p = sub.add_parser("info", help="what is built: counts, model ids, VAE metrics, build time")
    p.add_argument("--json", action="store_true")
    _home_option(p)

    p = sub.add_parser("similar", help="style-similar artworks to an artwork, a text, or liked/disliked examples")
    p.add_argument("id", nargs="?", help="artwork id (the catalog's own)")
    p.add_argument("--text", help='free-text query, e.g. "stormy seascape with a lighthouse"')
    p.add_argument("--like", action="append", metavar="ID", help="an artwork you like (repeatable)")
    p.add_argument("--unlike", action="append", metavar="ID", help="an artwork you do not like (repeatable)")
    p.add_argument("--k", type=int, default=10, help="results per page (default 10)")
    p.add_argument("--offset", type=int, default=0, help="skip this many results (pagination)")
    p.add_argument("--where", action="append", metavar="FIELD=VALUE",
                   help="filter, e.g. period=Renaissance, culture=French|Italian, year=1400..1500 (repeatable)")
    p.add_argument("--exclude", action="append", metavar="ID", help="never return this artwork (repeatable)")
    p.add_argument("--diverse", type=float, default=0.0, metavar="0..1", help="MMR diversity (0 = pure similarity)")
    p.add_argument("--min-score", type=float, help="drop results below this cosine similarity")
    p.add_argument("--other-creators", action="store_true",
                   help="leave out works by the query artwork's creators (more like this by other artists)")
    p.add_argument("--max-per-creator", type=int, metavar="N", help="at most N results by any one creator")
    p.add_argument("--json", action="store_true")
    _home_option(p)

    for name, helptext in (("critique", "a drafted critique of an artwork"), ("describe", "a drafted description")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("id", nargs="?", help="artwork id of the collection")
        p.add_argument("--text", help="a new artwork, described in words")
        p.add_argument("--title", help="the new artwork's title (with --text)")
        p.add_argument("--seed", type=int, default=0, help="same seed, same text (default 0)")
        p.add_argument("--json", action="store_true")
        if name == "critique":
            p.add_argument("--tone", type=_tone, action="append",
                           help="tone of the text (default: critique); with --all repeatable")
            p.add_argument("--all", action="store_true",
                           help="pre-generate critiques of the whole collection for the API (resumable; README)")
            p.add_argument("--engine", choices=["local", "ray"], default="local",
                           help="--all: local (this process, or --workers processes) or ray (one actor per worker)")
            p.add_argument("--workers", type=_positive,
                           help="--all: worker processes or Ray actors (local: 1; ray: one per CPU)")
            p.add_argument("--address", help="--all --engine ray: the cluster to join (default: start a local Ray)")
        _home_option(p)

    p = sub.add_parser("serve", help="serve the API, the widget and the demo gallery (gunicorn)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    _home_option(p)

    p = sub.add_parser("repair", help="rebuild the index from the database; salvage a damaged database")
    _home_option(p)

    p = sub.add_parser("keys", help="API keys: create NAME [--scope read|write], list, revoke NAME")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("name", nargs="?")
    p.add_argument("--scope", choices=["read", "write"], default="write",
                   help="create: write (default) may also add, change and remove artworks; read may only read")
    _home_option(p)

    p = sub.add_parser("train", help="retrain a model of the build (writer: the description decoder)")
    p.add_argument("what", choices=["writer"])
    p.add_argument("--epochs", type=int, help="training epochs (default: WriterTrainConfig's)")
    p.add_argument("--json", action="store_true", help="print the training summary as JSON")
    _home_option(p)

    p = sub.add_parser("eval", help="measure the build (the protocols of docs/design.md)")
    p.add_argument("what", choices=["recommend", "writer"],
                   help="recommend: precision@k by label in four variants, every method, with intervals; "
                        "writer: every drafter on the validation side, then the test side once, then critiques")
    p.add_argument("--k", type=int, default=10, help="recommend: neighbours per query")
    p.add_argument("--side", choices=["validation", "test"], default="test",
                   help="recommend: the held-out side that queries (validation while choosing; test to report)")
    p.add_argument("--limit", type=int, help="writer: draft for a seeded sample of this many works per side (150)")
    p.add_argument("--fluency-samples", type=int, default=40,
                   help="writer: how many of the sampled works the reference LM scores per drafter (40; slow on a CPU)")
    p.add_argument("--drafter", action="append", help="writer: only this drafter (repeatable; default all)")
    p.add_argument("--seed", type=int, default=0, help="writer: sampling seed")
    p.add_argument("--json", action="store_true")
    _home_option(p)
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    from api.serve import ServeError
    from critic.corpus import CatalogError
    from critic.keys import KeyNameError
    from critic.pregenerate import PregenerationError
    from critic.store import StoreError
    from critic.style_model import StyleModelError
    from critic.writer import WriterInputError, WriterModelError
    from index.errors import FilterError, IndexStoreError, QueryError, UnknownArtworkError

    return (
        UsageError, CatalogError, StyleModelError, StoreError, FileNotFoundError,
        FilterError, IndexStoreError, QueryError, UnknownArtworkError, KeyNameError, ServeError, WriterInputError,
        WriterModelError, PregenerationError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except _known_errors() as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"critic: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("critic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
