"""The ``nerdata`` command: noun groups with verb commands, thin wrappers over the library.

Each area lives in its own module (``cli/<area>.py``) exposing ``register(group)``.
Errors from the library become one line on stderr and exit code 1.
"""
from __future__ import annotations

import importlib
import sys

import click

import nerdata.label_studio  # noqa: F401  (registers ls:PROJECT with the data-source resolver)
from nerdata import __version__
from nerdata.errors import NerdataError

AREAS = ("corpora", "ls", "serve", "train", "agree", "release", "transfer", "report", "demo",
         "simulate")


class NerdataGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NerdataError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=NerdataGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                  "max_content_width": 100})
@click.version_option(__version__, prog_name="nerdata")
def cli() -> None:
    """nerdata: NER data for low-resource languages with a model in the loop.

    Import corpora into Label Studio, pre-annotate with a model, measure agreement,
    release versioned datasets and retrain across languages.
    """


def _register() -> None:
    for area in AREAS:
        try:
            mod = importlib.import_module(f"nerdata.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"nerdata.cli.{area}":
                continue  # area not built yet
            raise
        mod.register(cli)


_register()


def main() -> None:
    cli(prog_name="nerdata")


if __name__ == "__main__":
    main()
