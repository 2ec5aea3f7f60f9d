"""``/_admin/`` endpoints of the node emulator (clients of the contract never call them).

Shared with every demo upstream (devstack/http_admin.py): ``GET /_admin/health``,
``GET /_admin/info``, ``GET|PUT|PATCH /_admin/faults``, ``GET|DELETE /_admin/stats``
(DELETE also clears the RPC call log). The node's own:

- ``GET /_admin/rpc[?since=N&log=0]``: RPC calls per method and the call log;
- ``GET /_admin/chain``: tip, best hash, tips, generation, and the node state;
- ``POST /_admin/reorg`` ``{"depth": k, "extend": 0}``: the last k blocks replaced;
- ``POST /_admin/extend`` ``{"blocks": n}``; ``POST /_admin/tip`` ``{"height": h}``;
- ``POST /_admin/prune`` ``{"below": h}`` (null: nothing pruned); ``DELETE /_admin/prune``;
- ``POST /_admin/warmup`` ``{"seconds": s?, "requests": n?, "message"?}``;
  ``DELETE /_admin/warmup``;
- ``POST /_admin/outage`` ``{"seconds": s, "mode": "refuse"|"reset"|"close"}``
  (refuse: the port closes 0.1 s later, so this answer gets out); ``DELETE
  /_admin/outage`` (reset/close modes: a refused port cannot hear it);
- ``POST /_admin/network`` ``{"chain": "test"}``: what getblockchaininfo reports;
- ``POST /_admin/ibd`` ``{"active": true}``: initialblockdownload;
- ``POST /_admin/coinstatsindex`` ``{"enabled": false}``;
- ``POST /_admin/cookie``: write a new cookie (as a restart does);
- ``POST /_admin/reset`` (body ``{"chain": false, ...}`` keeps a part): chain, faults,
  stats, node state.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from devstack.http_admin import CommonAdmin, common_route, flag, json_object, json_response
from devstack.http_server import Response

if TYPE_CHECKING:
    from devstack.btc.server import BtcNodeServer

OUTAGE_DEFER_S = 0.1


def handle(node: BtcNodeServer, method: str, path: str, query: str, raw: bytes) -> Response:
    try:
        return _dispatch(node, method, path.rstrip("/"), parse_qs(query), raw)
    except json.JSONDecodeError as exc:
        return json_response(400, {"detail": f"bad JSON: {exc}"})
    except ValidationError as exc:
        return json_response(422, {"detail": exc.errors(include_url=False)})
    except KeyError as exc:
        return json_response(404, {"detail": str(exc)})
    except (TypeError, ValueError) as exc:
        return json_response(422, {"detail": str(exc)})


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    return None if value is None else int(value)


def _chain(node: BtcNodeServer) -> dict[str, Any]:
    return {**node.chain.describe(), "node": node.state.describe()}


def _dispatch(node: BtcNodeServer, method: str, path: str, params: dict[str, list[str]],
              raw: bytes) -> Response:
    endpoint = (method, path)
    if endpoint == ("DELETE", "/_admin/stats"):
        node.clear_stats()
        return json_response(200, {"status": "cleared"})
    common = common_route(CommonAdmin(node.faults, node.stats, node.info), method, path,
                          params, raw)
    if common is not None:
        return common
    if endpoint == ("GET", "/_admin/rpc"):
        since = int(params.get("since", ["0"])[-1])
        return json_response(200, node.rpc_log.snapshot(log=flag(params, "log", True),
                                                        since_seq=since))
    if endpoint == ("GET", "/_admin/chain"):
        return json_response(200, _chain(node))
    if endpoint == ("POST", "/_admin/reorg"):
        body = json_object(raw)
        hashes = node.reorg(int(body["depth"]), int(body.get("extend", 0)))
        return json_response(200, {"hashes": hashes, **_chain(node)})
    if endpoint == ("POST", "/_admin/extend"):
        hashes = node.extend(int(json_object(raw)["blocks"]))
        return json_response(200, {"hashes": hashes, **_chain(node)})
    if endpoint == ("POST", "/_admin/tip"):
        node.set_tip(int(json_object(raw)["height"]))
        return json_response(200, _chain(node))
    if endpoint == ("POST", "/_admin/prune"):
        node.prune(_optional_int(json_object(raw), "below"))
        return json_response(200, node.state.describe())
    if endpoint == ("DELETE", "/_admin/prune"):
        node.prune(None)
        return json_response(200, node.state.describe())
    if endpoint == ("POST", "/_admin/warmup"):
        body = json_object(raw)
        seconds = body.get("seconds")
        node.warm_up(None if seconds is None else float(seconds),
                     _optional_int(body, "requests"),
                     str(body.get("message", "Loading block index…")))
        return json_response(200, node.state.describe())
    if endpoint == ("DELETE", "/_admin/warmup"):
        node.end_warm_up()
        return json_response(200, node.state.describe())
    if endpoint == ("POST", "/_admin/outage"):
        body = json_object(raw)
        node.outage(float(body["seconds"]), body.get("mode", "refuse"),
                    defer_s=OUTAGE_DEFER_S)
        return json_response(200, node.state.describe())
    if endpoint == ("DELETE", "/_admin/outage"):
        node.end_outage()
        return json_response(200, node.state.describe())
    if endpoint == ("POST", "/_admin/network"):
        node.set_network(str(json_object(raw)["chain"]))
        return json_response(200, node.state.describe())
    if endpoint == ("POST", "/_admin/ibd"):
        node.set_ibd(bool(json_object(raw).get("active", True)))
        return json_response(200, node.state.describe())
    if endpoint == ("POST", "/_admin/coinstatsindex"):
        node.state.coinstatsindex = bool(json_object(raw).get("enabled", True))
        return json_response(200, node.state.describe())
    if endpoint == ("POST", "/_admin/cookie"):
        node.rotate_cookie()
        return json_response(200, {"cookie_file": node.cookie_file})
    if endpoint == ("POST", "/_admin/reset"):
        options = json_object(raw)
        parts = {part: bool(options.get(part, True))
                 for part in ("chain", "faults", "stats", "node")}
        node.reset(**parts)
        return json_response(200, parts)
    return json_response(404, {"detail": f"no admin endpoint {method} {path}"})
