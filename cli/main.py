"""The ``nerdata`` command: noun groups with verb commands, thin wrappers over the library.

Each area's commands live in ``cli/<area>.py`` as module-level functions; this module adds
them to the one group.  Errors from the library become one line on stderr and exit code 1.
Heavy libraries are imported inside the commands, so ``import nerdata.cli.main`` stays light.
"""
from __future__ import annotations

import sys

import click

import nerdata.label_studio  # noqa: F401  (registers ls:PROJECT with the data-source resolver)
from nerdata import __version__
from nerdata.errors import NerdataError

from . import agree, corpora, demo, ls, release, report, serve, simulate, train, transfer


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


for _command in (corpora.corpora_group, ls.ls_group, serve.serve_cmd, train.train_group,
                 train.predict_cmd, train.evaluate_cmd, agree.agree_cli, agree.adjudicate_cli,
                 release.release_group, transfer.transfer_group, transfer.robust_cmd,
                 report.report_cmd, demo.demo_cmd, simulate.simulate_cmd):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="nerdata")


if __name__ == "__main__":
    main()
