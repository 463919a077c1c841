"""The ``solomo`` command: ``dev`` (what ``make run`` starts), ``users create``, ``seed``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import typer

from solomo.core.settings import Settings, load_settings

cli = typer.Typer(help="SoLoMo service commands.", no_args_is_help=True, add_completion=False)
users_cli = typer.Typer(help="Manage accounts.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")


@contextlib.contextmanager
def _connected_settings() -> Iterator[Settings]:
    """Settings pointing at running servers: external URLs, the embedded ones of a running
    ``make run``, or embedded servers started just for this command."""
    settings = load_settings()
    if not settings.uses_embedded:
        yield settings
        return
    from solomo.embedded import embedded_for

    mongo_port, redis_port, broker_port = settings.embedded_ports
    with embedded_for(settings.data_dir, mongo_port=mongo_port, redis_port=redis_port,
                      broker_port=broker_port) as urls:
        yield load_settings(**urls)


@cli.command()
def dev(workers: int = typer.Option(1, help="Celery worker processes"),
        seed: bool = typer.Option(True, help="Seed the demo city into an empty database")) -> None:
    """Start MongoDB, the data Redis and the broker Redis (each embedded unless its SOLOMO_*_URL is set),
    a Celery worker with beat, and the API."""
    from solomo.devserver import run_dev

    raise typer.Exit(run_dev(load_settings(), workers=workers, seed=seed))


@users_cli.command("create")
def users_create(
    username: str = typer.Option(..., help="3..32 of [A-Za-z0-9_]"),
    password: str = typer.Option(..., help="at least 8 characters"),
    role: str = typer.Option("user", help="user, merchant or moderator"),
    display_name: str = typer.Option("", help="shown name"),
) -> None:
    """Create an account of any role (the only way to make a moderator)."""
    from solomo.accounts import user_public
    from solomo.core.errors import ApiError
    from solomo.services import open_services

    async def create(settings: Settings) -> dict[str, Any]:
        services = await open_services(settings)
        try:
            return user_public(await services.accounts.create_user(username, password, role, display_name or None))
        finally:
            await services.close()

    with _connected_settings() as settings:
        try:
            user = asyncio.run(create(settings))
        except ApiError as exc:
            typer.echo(f"error: {exc.code}: {exc.message}", err=True)
            raise typer.Exit(1) from None
    typer.echo(json.dumps(user, ensure_ascii=False))


@cli.command()
def seed(if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing unless there are no users")) -> None:
    """Seed the demo city (never touches a database that already has users)."""
    try:
        from solomo.seed import seed_demo_city
    except ImportError:
        typer.echo("no demo city in this build")
        return
    from solomo.services import open_services

    async def run(settings: Settings) -> str:
        services = await open_services(settings)
        try:
            return await seed_demo_city(services)
        finally:
            await services.close()

    with _connected_settings() as settings:
        typer.echo(asyncio.run(run(settings)))


@cli.command("compile")
def compile_modules(action: str = typer.Argument("build", help="build, clean or state")) -> None:
    """Compile the hot modules with mypyc in place (solomo.core.compiled), remove them, or say
    whether they match their sources."""
    from solomo.core import compiled

    if action == "build":
        raise typer.Exit(compiled.build())
    if action == "clean":
        compiled.clean()
    elif action == "state":
        typer.echo(compiled.state())
    else:
        typer.echo("error: build, clean or state", err=True)
        raise typer.Exit(2)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()


if __name__ == "__main__":
    main()
