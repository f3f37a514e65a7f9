"""The local feature store's controls: ``python -m components.feature_store COMMAND --repo DIR``.

Commands:
  materialize  bring the weather of --source into the offline and online stores (what the pipeline's
               materialize step does; a live feed runs it more often than the pipeline runs)
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
    parser.add_argument("--source", help="materialize: the span source holding the weather files")
    parser.add_argument("--repo", default="var/feature_store", help="the Feast repository (default var/feature_store)")
    parser.add_argument("--url", default="http://127.0.0.1:6566", help="where the feature server listens")
    args = parser.parse_args()
    if args.command == "materialize":
        from components.feature_store.materialization import materialize_new

        if not args.source:
            parser.error("materialize needs --source")
        print(json.dumps(materialize_new(args.source, args.repo), indent=2))
    elif args.command == "start":
        print(json.dumps(server.ensure_serving(args.repo, args.url), indent=2))
    elif args.command == "stop":
        print(json.dumps(server.stop(args.repo) or {"stopped": "nothing was running"}, indent=2))
    else:
        from components.feature_store.offline import read_state

        state = server.read_state(args.repo)
        print(json.dumps({"server": state, "offline": read_state(args.repo)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
