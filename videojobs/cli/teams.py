"""`vjm teams`: create, list, members, add, remove, delete (a team's jobs: `vjm jobs list --team`)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from rich.table import Table

from .render import make_console, when
from .session import add_as_user_option, add_database_option, add_json_option, open_manager, print_json, require


def register(sub: argparse._SubParsersAction) -> None:
    """Add `teams create|list|members|add|remove|delete`."""
    parser = sub.add_parser("teams", help="create teams, list them, add and remove members",
                            description="Teams: their members see each other's team jobs "
                                        "(`vjm jobs list --team TEAM_ID`).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a team; prints its id (TEAM_ID)")
    create.add_argument("name")
    create.add_argument("--owner", help="its owner and first member (default: the --as user)")
    listing = actions.add_parser("list", help="the teams the caller may see")
    members = actions.add_parser("members", help="a team's members")
    members.add_argument("team_id")
    add = actions.add_parser("add", help="add a member (the owner or an admin may)")
    add.add_argument("team_id")
    add.add_argument("user_id")
    add.add_argument("--role", choices=("member", "owner"), default="member")
    remove = actions.add_parser("remove", help="remove a member (a member may remove themselves)")
    remove.add_argument("team_id")
    remove.add_argument("user_id")
    delete = actions.add_parser("delete", help="delete a team (refused while it has jobs)")
    delete.add_argument("team_id")
    for one in (create, listing, members, add, remove, delete):
        add_database_option(one)
        add_json_option(one)
        add_as_user_option(one)
        one.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Run one team action; print the result."""
    owner = getattr(args, "owner", None) or args.as_user
    if args.action == "create":
        require(owner is not None, "name the owner: --owner USER (or act as them with --as USER)", "owner")
    async with open_manager(args) as manager:
        result: Any
        if args.action == "create":
            result = await manager.teams.create(args.name, owner)
        elif args.action == "list":
            result = await manager.teams.visible(1000)
        elif args.action == "members":
            result = await manager.teams.members(args.team_id)
        elif args.action == "add":
            result = await manager.teams.add_member(args.team_id, args.user_id, args.role)
        elif args.action == "remove":
            removed = await manager.teams.remove_member(args.team_id, args.user_id)
            require(removed, f"{args.user_id} is not a member of team {args.team_id}", "user_id")
            result = {"team_id": args.team_id, "user_id": args.user_id, "removed": True}
        else:
            result = await manager.teams.delete(args.team_id)
    if args.json:
        print_json(result)
    elif args.action == "create":
        print(result.team_id)  # TEAM_ID=$(vjm teams create studio --as alice)
    elif isinstance(result, list):
        make_console().print(_table(result))
    else:
        print(f"{args.action}: ok")
    return 0


def _table(rows: list) -> Table:
    table = Table(title_justify="left")
    if not rows:
        table.add_column("none")
        return table
    fields = list(rows[0].model_dump())
    for name in fields:
        table.add_column(name, no_wrap=True, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(getattr(row, name)) for name in fields))
    return table


def _cell(value: object) -> str:
    return when(value) if isinstance(value, datetime) else str(value)
