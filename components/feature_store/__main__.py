"""The local feature store's controls: ``python -m components.feature_store COMMAND --repo DIR``.

Commands:
  materialize  bring the feature views' feeds of --source into the offline and online stores (what the
               pipeline's materialize step does; a live feed runs it more often than the pipeline runs)
  start   start Feast's feature server for the repository (--url, default http://127.0.0.1:6566)
  stop    stop it
  status  what runs, and what the offline and online stores hold
"""

import argparse
import json
import sys

from components.feature_store import server


def main() -> int:
    """Parses the command line and acts."""
    parser = argparse.ArgumentParser(prog="python -m components.feature_store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["materialize", "start", "stop", "status"])
    parser.add_argument("--source", help="materialize: the span source holding the feeds")
    parser.add_argument("--spec", help="materialize, status: the dataset spec (spec.toml) declaring the feature views")
    parser.add_argument("--repo", default="var/feature_store", help="the Feast repository (default var/feature_store)")
    parser.add_argument("--url", default="http://127.0.0.1:6566", help="where the feature server listens")
    args = parser.parse_args()
    spec = None
    if args.spec:
        from components.dataset_spec import DatasetSpec, SpecError

        try:
            spec = DatasetSpec.load(args.spec)
        except SpecError as error:
            parser.error(str(error))
    if args.command == "materialize":
        from components.feature_store.materialization import materialize_new

        if not args.source or spec is None:
            parser.error("materialize needs --source and --spec")
        print(json.dumps(materialize_new(args.source, args.repo, spec), indent=2))
    elif args.command == "start":
        print(json.dumps(server.ensure_serving(args.repo, args.url), indent=2))
    elif args.command == "stop":
        print(json.dumps(server.stop(args.repo) or {"stopped": "nothing was running"}, indent=2))
    else:
        from components.feature_store.offline import read_state

        state = server.read_state(args.repo)
        views = spec.feature_views if spec is not None else []
        print(json.dumps({"server": state, "offline": {view.name: read_state(args.repo, view) for view in views}},
                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
