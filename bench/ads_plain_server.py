"""Baseline (b) of the ranking benchmark: a plain grpc.aio server (no interceptors, no
telemetry) running the same RankService as the Serve replicas. Prints its port.

    python -m bench.ads_plain_server CONFIG_JSON
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from services.public.ads.config import AdsConfig
from services.public.ads.service import RankService


class PlainRanker(ads_pb2_grpc.AdServiceServicer):
    def __init__(self, service: RankService) -> None:
        self.service = service

    async def Rank(
        self, request: ads_pb2.RankRequest, context: grpc.aio.ServicerContext
    ) -> ads_pb2.RankResponse:
        return self.service.rank(request)


async def main(config_json: str) -> None:
    service = RankService(AdsConfig.model_validate_json(config_json).resolved())
    server = grpc.aio.server()
    ads_pb2_grpc.add_AdServiceServicer_to_server(PlainRanker(service), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
