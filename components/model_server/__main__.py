"""Runs the model server: ``python -m components.model_server --model-dir D --name N --port P``."""

import argparse
import sys

from components.model_server.server import serve


def main() -> int:
    """Parses the command line and serves until stopped."""
    parser = argparse.ArgumentParser(prog="python -m components.model_server")
    parser.add_argument("--model-dir", required=True, help="folder with model.joblib and model.json")
    parser.add_argument("--name", required=True, help="model name in the URLs")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    args, _ = parser.parse_known_args()
    serve(args.model_dir, args.name, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
