"""`traceglider goals ...` and `traceglider funnels ...`: a site's goals and funnels
from the command line, on the same configuration the dashboard edits
(`site_config.py`). Bad input exits 2 with the validator's reason."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from traceglider import site_config
from traceglider.errors import BadRequest, NotFound

Command = Callable[[Any, str, str], argparse.ArgumentParser]  # cli._command: a parser with --storage ...
Open = Callable[[argparse.Namespace], Any]  # the storage the flags name


def add_commands(commands: Any, command: Command, open_storage: Open) -> None:
    text = "list, add, change or remove a site's goals"
    goals = commands.add_parser("goals", help=text, description=text[:1].upper() + text[1:] + ".")
    goal_cmds = goals.add_subparsers(dest="action", metavar="ACTION", required=True, help="what to do")
    for name, text in (("list", "the site's goals"), ("add", "add a goal"), ("edit", "change a goal"),
                       ("remove", "remove a goal")):
        cmd = command(goal_cmds, name, text)
        cmd.add_argument("--site", metavar="DOMAIN", required=True, help="the site domain")
        cmd.add_argument("--json", action="store_true", help="print the configuration as JSON")
        if name in ("add", "edit"):
            kind = cmd.add_mutually_exclusive_group(required=True)
            kind.add_argument("--page", help="a pageview goal: a path, globs allowed (/signup, /blog/**)")
            kind.add_argument("--event", help="a custom event goal: the event's name")
        if name in ("edit", "remove"):
            cmd.add_argument("goal", help="the goal as listed (Visit /signup, Signup)")
        cmd.set_defaults(run=lambda args: _run(args, open_storage, _goals))

    text = "list, add, change or remove a site's funnels"
    funnels = commands.add_parser("funnels", help=text, description=text[:1].upper() + text[1:] + ".")
    funnel_cmds = funnels.add_subparsers(dest="action", metavar="ACTION", required=True, help="what to do")
    for name, text in (("list", "the site's funnels"), ("add", "add a funnel"), ("edit", "change a funnel"),
                       ("remove", "remove a funnel")):
        cmd = command(funnel_cmds, name, text)
        cmd.add_argument("--site", metavar="DOMAIN", required=True, help="the site domain")
        cmd.add_argument("--json", action="store_true", help="print the configuration as JSON")
        if name in ("edit", "remove"):
            cmd.add_argument("name", help="the funnel's name")
        if name in ("add", "edit"):
            cmd.add_argument("--as", dest="new_name", required=name == "add", help="the funnel's (new) name")
            cmd.add_argument("--step", action="append", required=True, dest="steps",
                             help="a step, 2 to 8 in order: Visit /path or an event name")
        cmd.set_defaults(run=lambda args: _run(args, open_storage, _funnels))


def _run(args: argparse.Namespace, open_storage: Open, job: Callable[[Any, argparse.Namespace], Any]) -> int:
    try:
        config = job(open_storage(args), args)
    except (BadRequest, NotFound) as exc:
        print(f"traceglider: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"goals": config.goals, "funnels": config.funnels}, indent=2, ensure_ascii=False))
    elif args.command == "goals":
        print("\n".join(config.goals) if config.goals else f"no goals on {args.site}")
    else:
        print("\n".join(f"{f['name']}: {' -> '.join(f['steps'])}" for f in config.funnels)
              if config.funnels else f"no funnels on {args.site}")
    return 0


def _goals(storage: Any, args: argparse.Namespace) -> site_config.SiteConfig:
    if args.action == "list":
        return site_config.read(storage, args.site)
    if args.action == "remove":
        return site_config.remove_goal(storage, args.site, args.goal)
    goal = site_config.page_goal(args.page) if args.page is not None else site_config.event_goal(args.event)
    return site_config.add_goal(storage, args.site, goal, replace=args.goal if args.action == "edit" else None)


def _funnels(storage: Any, args: argparse.Namespace) -> site_config.SiteConfig:
    if args.action == "list":
        return site_config.read(storage, args.site)
    if args.action == "remove":
        return site_config.remove_funnel(storage, args.site, args.name)
    funnel = {"name": args.new_name or args.name, "steps": args.steps}
    return site_config.put_funnel(storage, args.site, funnel, replace=args.name if args.action == "edit" else None)
