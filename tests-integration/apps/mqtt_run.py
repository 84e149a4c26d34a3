"""Serve an ASGI app from an MQTT broker with cymongoose's ``MqttServer``, taking the
flags of the ``cymongoose-asgi --mqtt`` command line (for the tests and the bench while
that command line is not in this tree):

    python mqtt_run.py --mqtt mqtt://HOST:PORT [--mqtt-client-id ID] module:app

SIGTERM and SIGINT stop the server (the app receives ``mqtt.disconnect``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from cymongoose.asgi.mqtt import MqttServer
from cymongoose.importer import import_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mqtt", required=True, metavar="URL")
    parser.add_argument("--mqtt-client-id", default="")
    parser.add_argument("--mqtt-username", default="")
    parser.add_argument("--mqtt-password", default="")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("app")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(message)s")
    server = MqttServer(import_app(args.app), args.mqtt, client_id=args.mqtt_client_id,
                        username=args.mqtt_username, password=args.mqtt_password)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.stop)
        await server.arun()

    asyncio.run(run())


if __name__ == "__main__":
    main()
