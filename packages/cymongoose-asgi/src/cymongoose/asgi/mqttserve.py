"""``cymongoose-asgi --mqtt URL``: the MQTT flags and the process that serves them.

``--mqtt`` alone runs only the MQTT server (`cymongoose.asgi.mqtt.MqttServer`); with an
explicit ``--port``, ``--uds`` or ``--fd`` the same process also serves HTTP/WebSocket,
both on one `cymongoose.aio.AsyncManager` (a Channels ``ProtocolTypeRouter`` with
``http``, ``websocket`` and ``mqtt`` keys gets each scope from its server). Lifespan
runs once, for both. SIGINT/SIGTERM stop the MQTT side first (``mqtt.disconnect`` to
each instance, DISCONNECT to the broker), then the HTTP side (graceful, as without MQTT).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cymongoose import TlsOpts
from cymongoose.aio import AsyncManager
from cymongoose.serving import lifecycle
from cymongoose.serving.config import ServerConfig

from . import server as http_server
from .lifespan import Lifespan

__all__ = ["MqttSettings", "add_mqtt_arguments", "mqtt_options", "serve", "serve_with_mqtt"]

logger = logging.getLogger("cymongoose.asgi")


@dataclass(frozen=True)
class MqttSettings:
    """What the ``--mqtt*`` flags say (see :func:`add_mqtt_arguments` for each)."""

    url: str
    client_id: str = ""
    username: str = ""
    password: str = ""
    clean_session: bool = True
    keepalive: int = 60
    version: int = 4
    max_applications: int = 1000
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    http: bool = False  # also serve HTTP (an explicit --port, --uds or --fd)

    def tls(self) -> TlsOpts | None:
        """TlsOpts from the PEM files (None for ``mqtt://``); OSError naming an
        unreadable file, ValueError naming the flag of a file without a usable
        certificate or key."""
        if not self.url.startswith("mqtts://"):
            return None
        pem = {flag: Path(path).read_bytes() for flag, path in (
            ("ca", self.ca_certs), ("cert", self.certfile), ("key", self.keyfile)) if path}
        try:
            return TlsOpts(**pem)
        except ValueError as exc:
            flag = {"ca": "--mqtt-ca-certs", "cert": "--mqtt-certfile",
                    "key": "--mqtt-keyfile"}.get(getattr(exc, "argument", ""), "--mqtt")
            raise ValueError(f"{flag}: {exc}") from None

    def server(self, app: Any, manager: AsyncManager | None = None,
               tls: TlsOpts | None = None) -> Any:
        """The `MqttServer` of these settings for ``app``; ``tls``: what `tls` made
        (default: made now)."""
        from .mqtt import MqttServer

        return MqttServer(app, self.url, client_id=self.client_id, username=self.username,
                          password=self.password, clean_session=self.clean_session,
                          keepalive=self.keepalive, version=self.version,
                          tls=tls if tls is not None else self.tls(),
                          max_applications=self.max_applications, manager=manager)


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--mqtt*`` flags (not ServerConfig fields: :func:`mqtt_options` reads
    them)."""
    mq = parser.add_argument_group(
        "MQTT (ASGI over MQTT, mqttasgi's messages; needs cymongoose-asgi[mqtt])")
    mq.add_argument("--mqtt", metavar="URL",
                    help="serve the app's mqtt scope from this broker, mqtt://HOST[:PORT] "
                         "or mqtts://HOST[:PORT] (TLS); alone, no HTTP listener is opened, "
                         "with an explicit --port/--uds/--fd both are served")
    mq.add_argument("--mqtt-client-id", metavar="ID",
                    help="MQTT client id (default: cymongoose- and 12 random hex digits)")
    mq.add_argument("--mqtt-username", metavar="USER", help="MQTT user name")
    mq.add_argument("--mqtt-password", metavar="PASSWORD",
                    help="MQTT password (prefer the variable CYMONGOOSE_MQTT_PASSWORD)")
    mq.add_argument("--mqtt-clean-session", action=argparse.BooleanOptionalAction,
                    default=None,
                    help="start a clean session (default on); off keeps the broker's "
                         "session and the QoS 1/2 messages it queued while we were away")
    mq.add_argument("--mqtt-keepalive", type=int, metavar="SECONDS",
                    help="MQTT keep alive, 1-65535 (default 60)")
    mq.add_argument("--mqtt-version", type=int, choices=(4, 5),
                    help="MQTT protocol: 4 = 3.1.1 (default), 5 = 5.0 (message properties)")
    mq.add_argument("--mqtt-max-applications", type=int, metavar="COUNT",
                    help="live application instances (master and spawned workers) at "
                         "most (default 1000)")
    mq.add_argument("--mqtt-ca-certs", metavar="PATH",
                    help="mqtts: PEM CA certificates to verify the broker with (default: "
                         "the system's)")
    mq.add_argument("--mqtt-certfile", metavar="PATH",
                    help="mqtts: PEM client certificate (with --mqtt-keyfile)")
    mq.add_argument("--mqtt-keyfile", metavar="PATH", help="mqtts: PEM client private key")


def _on_command_line(flag: str, argv: Sequence[str]) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def _given(flag: str, argv: Sequence[str]) -> bool:
    variable = "CYMONGOOSE_" + flag[2:].upper().replace("-", "_")
    return variable in os.environ or _on_command_line(flag, argv)


def mqtt_options(args: argparse.Namespace, parser: argparse.ArgumentParser,
                 given: Sequence[str]) -> dict[str, Any]:
    """``{"mqtt": MqttSettings}`` for ``serve`` when ``--mqtt`` is given, else ``{}``.
    A bad value exits through ``parser.error`` naming the flag (status 2)."""
    if args.mqtt is None:
        # A variable (CYMONGOOSE_MQTT_PASSWORD in a shared .env) is no mistake; a flag is.
        stray = [flag for a in parser._actions if a.dest.startswith("mqtt_")
                 for flag in a.option_strings if _on_command_line(flag, given)]
        if stray:
            parser.error(f"{stray[0]} needs --mqtt URL")
        return {}
    try:
        from .mqtt import check_url
    except ImportError as exc:
        parser.error(f"--mqtt needs asgiref ({exc}): pip install 'cymongoose-asgi[mqtt]'")
    try:
        check_url(args.mqtt)
    except ValueError as exc:
        parser.error(f"--mqtt: {exc}".replace("url must", "the broker URL must"))
    if (args.workers or 1) > 1:
        parser.error("--mqtt runs in one process (one MQTT client id): use --workers 1 and "
                     "start several processes with a $share/GROUP/ subscription instead")
    if args.reload:
        parser.error("--mqtt cannot be used with --reload")
    if args.mqtt_keepalive is not None and not 1 <= args.mqtt_keepalive <= 65535:
        parser.error(f"--mqtt-keepalive must be 1-65535 seconds, got {args.mqtt_keepalive}")
    if args.mqtt_max_applications is not None and args.mqtt_max_applications < 1:
        parser.error(f"--mqtt-max-applications must be >= 1, got {args.mqtt_max_applications}")
    if bool(args.mqtt_certfile) != bool(args.mqtt_keyfile):
        parser.error("--mqtt-certfile and --mqtt-keyfile must be given together")
    tls_flags = [f for f in ("ca_certs", "certfile", "keyfile") if getattr(args, "mqtt_" + f)]
    if tls_flags and not args.mqtt.startswith("mqtts://"):
        parser.error(f"--mqtt-{tls_flags[0].replace('_', '-')} needs an mqtts:// --mqtt URL")
    values = {name: getattr(args, "mqtt_" + name) for name in (
        "client_id", "username", "password", "clean_session", "keepalive", "version",
        "max_applications", "ca_certs", "certfile", "keyfile")}
    http = any(_given(f, given) for f in ("--port", "--uds", "--fd")) or args.worker_process
    return {"mqtt": MqttSettings(args.mqtt, http=http,
                                 **{k: v for k, v in values.items() if v is not None})}


def serve(app: Any, url: str | None = None, *, config: ServerConfig | None = None,
          watchdog: Any = None, mqtt: MqttSettings | None = None, **options: Any) -> None:
    """The command line's ``serve``: `cymongoose.asgi.serve` without ``mqtt``; with it
    (``--mqtt``), `serve_with_mqtt` in a server process
    (`cymongoose.asgi.server.serve_process`: logging, start and finish lines, the chosen
    loop); blocks. Raises as `ASGIServer.start`, and OSError/ValueError naming an mqtts
    file that cannot be used."""
    if mqtt is None:
        http_server.serve(app, url, config=config, watchdog=watchdog, **options)
        return
    cfg = ServerConfig.from_kwargs(config, **options)
    http_server.serve_process(cfg, lambda: serve_with_mqtt(app, cfg, mqtt, watchdog))


async def serve_with_mqtt(app: Any, config: ServerConfig, mqtt: MqttSettings,
                          watchdog: Any = None) -> None:
    """Serve ``app`` over MQTT (and HTTP when ``mqtt.http``) until SIGINT/SIGTERM (or the
    HTTP server's watchdog asks to stop), then stop both gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    http: http_server.ASGIServer | None = None
    tls = mqtt.tls()  # a bad certificate file fails before anything starts
    mqtt.server(app)  # so does a bad setting
    if mqtt.http:
        http = http_server.ASGIServer(app, config=config, watchdog=watchdog)
        stop = http.exit_requested
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread
    try:
        task = await _serve_both(app, config, mqtt, tls, http, stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]



async def _serve_both(app: Any, config: ServerConfig, mqtt: MqttSettings, tls: TlsOpts | None,
                      http: http_server.ASGIServer | None, stop: asyncio.Event) -> Any:
    """Start (lifespan, HTTP if any, MQTT), wait for ``stop``, stop (MQTT first); returns
    the MQTT server's task (done)."""
    lifespan: Lifespan | None = None
    if config.lifespan != "off":
        lifecycle.app_starting(logger)
    if http is not None:
        conn = await http.start()
        am = http.async_manager
        if config.fd is None:  # else the process that bound it says where
            lifecycle.running(logger, lifecycle.listen_url(
                http.scheme, conn.local_addr[0], conn.local_addr[1], http.unix_path))
    else:
        am = AsyncManager()
        await am.start()
        if config.lifespan != "off":
            lifespan = Lifespan(app, {}, config.lifespan)
            try:
                await lifespan.startup()
            except BaseException:
                await lifespan.shutdown()
                await am.aclose()
                raise
    lifecycle.app_started(logger)
    server = mqtt.server(app, manager=am, tls=tls)
    task = asyncio.ensure_future(server.arun())
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        lifecycle.shutting_down(logger)
        waiter.cancel()
        server.stop()
        await asyncio.gather(task, return_exceptions=True)
        supported = http.lifespan_supported if http is not None else \
            lifespan is not None and lifespan.supported
        if supported:
            lifecycle.app_stopping(logger)
        if http is not None:
            await http.stop()
        else:
            if lifespan is not None:
                await lifespan.shutdown()
            await am.aclose()
        if supported:
            lifecycle.app_stopped(logger)
    return task
