"""The ``edgemed`` command: thin glue that parses options and calls one stage entry point.

Each stage owns its subcommand in ``edgemed/<stage>/cli.py`` (a click command named ``command``);
they are imported lazily so ``edgemed --help`` stays fast and a broken optional dependency of one
stage never breaks the others. Every stage prints its summary on stdout (``--json`` for scripts);
its progress lines and errors go to stderr, the libraries' output to its log file (``edgemed.console``),
and the exit code says what kind of failure it was (``EPILOG``).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

import click

from edgemed import console
from edgemed.errors import EXIT_CODES, EdgemedError, EnvironmentFailure

DISK_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT)

# name -> (module holding `command`, one-line help shown by `edgemed --help`)
STAGES = {
    "data": ("edgemed.data.cli", "Build and validate rubric data: heart subset, validation."),
    "models": ("edgemed.models.cli", "Resolve a model spec and chat with it."),
    "train": ("edgemed.train.cli", "GRPO post-training with LoRA/QLoRA and rubric rewards."),
    "export": ("edgemed.export.cli", "Build GGUF/ONNX artifacts with parity checks and a manifest."),
    "bench": ("edgemed.bench.cli", "HealthBench-heart quality and latency for every artifact."),
    "run": ("edgemed.pipeline.cli", "The whole pipeline: train → merge → export → bench."),
    "judge": ("edgemed.judges.cli", "Grade a response against a rubric with a configured judge."),
    "verify": ("edgemed.export.verify_cli", "Check an export folder against its manifest (paths, sha256, structure)."),
}

# \b keeps click from re-wrapping the table.
EPILOG = "\b\nExit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(STAGES)

    def get_command(self, ctx, name):
        if name not in STAGES:
            return None
        try:
            return importlib.import_module(STAGES[name][0]).command
        except ImportError as e:  # a stage module or a library it needs is not installed
            raise EnvironmentFailure(f"'edgemed {name}' cannot load ({e}); reinstall with `make install`") from e

    def format_commands(self, ctx, formatter):
        # From the table, without importing any stage: `edgemed --help` stays instant.
        # tests/test_cli.py loads every stage's own --help, so a broken one cannot hide behind this.
        rows = [(name, help_text) for name, (_, help_text) in STAGES.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True,
              help="Show each stage's log live (libraries' output included) and log at debug level.")
def cli(verbose: bool) -> None:
    """edgemed: a heart-focused medical assistant for the edge — train, export, bench."""
    console.setup(verbose)


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors become one line on stderr and their class's exit code (see EPILOG)."""
    from edgemed.runtimes.llamacpp import set_wait_policy

    # Before torch, llama.cpp or onnxruntime load: OpenMP reads it once. Children inherit it.
    set_wait_policy()
    try:
        cli.main(args=argv, prog_name="edgemed", standalone_mode=False)
    except EdgemedError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except OSError as e:
        # A full or read-only disk mid-stage: every write is atomic, so say so in one line.
        if e.errno not in DISK_ERRNOS:
            raise
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"error: {where}{os.strerror(e.errno).lower()} (nothing half-written was kept; "
                   "free space or fix permissions and re-run to resume)", err=True)
        return EnvironmentFailure.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    finally:
        console.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
