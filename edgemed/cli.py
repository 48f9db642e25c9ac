"""The ``edgemed`` command: thin glue that parses options and calls one stage entry point.

Each stage owns its subcommand in ``edgemed/<stage>/cli.py`` (a click command named ``command``);
they are imported lazily so ``edgemed --help`` stays fast and a broken optional dependency of one
stage never breaks the others.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys

import click

from edgemed.errors import EdgemedError

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
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(STAGES)

    def get_command(self, ctx, name):
        if name not in STAGES:
            return None
        module, help_text = STAGES[name]
        try:
            return importlib.import_module(module).command
        except ModuleNotFoundError as e:
            if e.name != module:
                raise

            @click.command(name=name, help=help_text, short_help=help_text,
                           context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args):
                raise click.ClickException(f"'edgemed {name}' is not yet available in this build")

            return unavailable

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, help_text) in STAGES.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (library logs included).")
def cli(verbose: bool) -> None:
    """edgemed: a heart-focused medical assistant for the edge — train, export, bench."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors become one line on stderr and exit code 2."""
    from edgemed.runtimes.llamacpp import set_wait_policy

    # Before torch, llama.cpp or onnxruntime load: OpenMP reads it once. Children inherit it.
    set_wait_policy()
    try:
        cli.main(args=argv, prog_name="edgemed", standalone_mode=False)
    except EdgemedError as e:
        click.echo(f"error: {e}", err=True)
        return 2
    except OSError as e:
        # A full or read-only disk mid-stage: every write is atomic, so say so in one line.
        if e.errno not in DISK_ERRNOS:
            raise
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"error: {where}{os.strerror(e.errno).lower()} (nothing half-written was kept; "
                   "free space or fix permissions and re-run to resume)", err=True)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
