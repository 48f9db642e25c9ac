"""``edgemed verify``: check a copied export folder (a bundle on a device) before anything uses it."""

from __future__ import annotations

import click


@click.command(name="verify", help="Check an export folder against its manifest.json: every artifact's path "
               "stays inside the folder, its size and sha256 match, and its file structure is whole (GGUF "
               "header and tensor data, ONNX graph and external data). Run it on a device after copying an "
               "export, before `ollama create` or a bench. Example: edgemed verify exports/smol")
@click.argument("export_dir")
@click.option("--artifact", "names", multiple=True, help="Only these artifact names (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run (for scripts) instead of lines.")
def command(export_dir: str, names: tuple[str, ...], as_json: bool) -> None:
    import json

    from edgemed.errors import ConfigError, DataError, EdgemedError
    from edgemed.export.manifest import load_manifest
    from edgemed.export.verify import verify_artifact
    from edgemed.io import absolute

    manifest = load_manifest(absolute(export_dir))
    unknown = sorted(set(names) - {a.name for a in manifest.artifacts})
    if unknown:
        raise ConfigError(f"artifact(s) {unknown} are not in {manifest.path} "
                          f"(has: {[a.name for a in manifest.artifacts]})")
    failed: list[str] = []
    rows: list[dict] = []
    checked = [a for a in manifest.artifacts if not names or a.name in names]
    for a in checked:
        try:
            verify_artifact(a, strict=True, override=None)
        except EdgemedError as e:
            failed.append(a.name)
            rows.append({"artifact": a.name, "path": str(a.path), "ok": False, "error": str(e)})
            click.echo(f"error: {e}", err=True)
        else:
            rows.append({"artifact": a.name, "path": str(a.path), "ok": True, "bytes": a.bytes, "sha256": a.sha256})
            if not as_json:
                click.echo(f"ok  {a.name}  {a.path}  {a.bytes / 1e6:.1f} MB  sha256 {a.sha256}")
    if as_json:
        click.echo(json.dumps({"manifest": str(manifest.path), "artifacts": rows}, indent=2))
    if failed:
        raise DataError(f"{len(failed)} of {len(checked)} artifact(s) failed verification ({', '.join(failed)}); "
                        "re-export them or copy the folder again", path=str(manifest.path))
