"""A release as a git repository, and publishing it to the Hugging Face Hub.

Every version directory is a git repository whose history has one commit and one
annotated tag ``vX.Y.Z`` per version: building ``1.1.0`` clones the history of the
previous version (``git clone --local``: hard links, no copies) and commits on top.
Publishing is therefore either ``git push`` of the newest version directory (the Hub
needs git-lfs for the parquet files; see :data:`GITATTRIBUTES`) or :func:`push_release`,
which uses ``huggingface_hub``: ``create_repo`` + ``upload_folder`` + ``create_tag``.

Git runs with a fixed identity and no global or system configuration, so it works on CI
machines without ``git config`` and gives the same commit for the same release.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerdata.errors import ConfigError, MissingDependencyError, NerdataError

IDENTITY = ("nerdata release", "release@nerdata.invalid")
# the Hub's standard attributes: parquet through git-lfs (ignored where git-lfs is absent)
GITATTRIBUTES = "*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"


class GitError(NerdataError, RuntimeError):
    """A git command failed inside a release directory."""


def git(args: list[str], cwd: Path, *, when: str | None = None) -> str:
    """Run ``git`` in ``cwd`` with the release identity; returns stdout."""
    if shutil.which("git") is None:
        raise MissingDependencyError("git is required to version releases but is not on PATH: "
                                     "install git (apt-get install git) or build with git=False")
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
           "GIT_AUTHOR_NAME": IDENTITY[0], "GIT_AUTHOR_EMAIL": IDENTITY[1],
           "GIT_COMMITTER_NAME": IDENTITY[0], "GIT_COMMITTER_EMAIL": IDENTITY[1]}
    if when:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
    cmd = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
           "-c", "tag.gpgsign=false", "-c", "core.autocrlf=false", "-c", "gc.auto=0", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GitError(f"{cwd}: `git {' '.join(args)}` failed (exit {proc.returncode}): "
                       f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def tag_name(version: str) -> str:
    return f"v{version}"


def commit_version(directory: Path, version: str, message: str, *, previous: Path | None = None,
                   when: str | None = None) -> str:
    """Commit ``directory``'s files as ``version`` on top of ``previous``'s history."""
    directory = directory.resolve()  # git runs in other folders: relative paths would move
    if previous is not None and (previous / ".git").is_dir():
        tmp = directory.parent / f".{directory.name}.gitclone"
        shutil.rmtree(tmp, ignore_errors=True)
        git(["clone", "--quiet", "--local", "--no-checkout", str(previous.resolve()), str(tmp)],
            directory.parent)
        os.replace(tmp / ".git", directory / ".git")
        shutil.rmtree(tmp, ignore_errors=True)
        git(["remote", "remove", "origin"], directory)
    else:
        git(["init", "--quiet"], directory)
    git(["add", "--all"], directory)
    git(["commit", "--quiet", "-m", message], directory, when=when)
    git(["tag", "-a", tag_name(version), "-m", message], directory, when=when)
    return git(["rev-parse", "HEAD"], directory).strip()


def tagged_file(directory: Path, version: str, path: str) -> bytes | None:
    """A file's bytes as committed under the version's tag (None without git/tag/file)."""
    if not (directory / ".git").is_dir() or shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "show", f"{tag_name(version)}:{path}"], cwd=directory,
                          capture_output=True,
                          env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1",
                               "GIT_CONFIG_GLOBAL": os.devnull})
    return proc.stdout if proc.returncode == 0 else None


# ------------------------------------------------------------------------- Hub
@dataclass
class PushPlan:
    """Exactly what :func:`push_release` sends to the Hub."""

    repo_id: str
    folder: Path
    version: str
    files: list[dict[str, Any]] = field(default_factory=list)  # path, sha256, bytes
    repo_type: str = "dataset"
    revision: str = "main"
    private: bool = False
    delete_patterns: list[str] = field(default_factory=lambda: ["data/**"])

    @property
    def tag(self) -> str:
        return tag_name(self.version)

    @property
    def commit_message(self) -> str:
        return f"Release {self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "repo_type": self.repo_type, "folder": str(self.folder),
                "revision": self.revision, "tag": self.tag, "private": self.private,
                "commit_message": self.commit_message, "delete_patterns": self.delete_patterns,
                "files": self.files}


def push_plan(release_dir: Path, manifest: dict, repo_id: str, *, private: bool = False) -> PushPlan:
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"--repo-id must be ORG/NAME, got {repo_id!r}")
    files = [{"path": p, "sha256": v["sha256"], "bytes": v["bytes"]}
             for p, v in sorted(manifest["files"].items())]
    for extra in ("manifest.json", "manifest.json.sha256"):  # the checksum: releases without git
        if (release_dir / extra).is_file():
            files.append({"path": extra, "sha256": None, "bytes": (release_dir / extra).stat().st_size})
    return PushPlan(repo_id, release_dir, manifest["version"], files, private=private)


def push_to_hub(plan: PushPlan, *, token: str | None = None, endpoint: str | None = None) -> dict:
    """Create the dataset repo, upload the release's files and tag the commit.

    ``token`` defaults to ``$HF_TOKEN``; ``endpoint`` to the Hub (``$HF_ENDPOINT``).
    """
    from nerdata.errors import require

    hub = require("huggingface_hub", "release")
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise ConfigError("cannot push: Hugging Face Hub offline mode is on (HF_HUB_OFFLINE); "
                          "unset it to publish, or use --dry-run to see the upload plan")
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise ConfigError("no Hub token: set HF_TOKEN (a write token) or pass --token")
    api = hub.HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=plan.private,
                              exist_ok=True)
        info = api.upload_folder(repo_id=plan.repo_id, folder_path=str(plan.folder),
                                 repo_type=plan.repo_type, revision=plan.revision,
                                 commit_message=plan.commit_message,
                                 allow_patterns=[f["path"] for f in plan.files],
                                 delete_patterns=plan.delete_patterns)
        api.create_tag(plan.repo_id, tag=plan.tag, tag_message=plan.commit_message,
                       revision=info.oid, repo_type=plan.repo_type)
    except Exception as exc:  # the network boundary: httpx2, HfHubHTTPError, OSError ...
        from nerdata.errors import ServiceError

        raise ServiceError(f"pushing {plan.folder} to {plan.repo_id} "
                           f"({endpoint or constants.ENDPOINT}) failed: {exc}") from exc
    return {"repo_url": str(url), "commit": info.oid, "tag": plan.tag,
            "files": len(plan.files)}
