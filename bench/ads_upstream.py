"""A minimal AdService upstream for the gateway benchmark: a real grpc.aio server on the
shared foundation that answers Rank with a fixed small ranking. Prints its port."""

from __future__ import annotations

import asyncio

import grpc

from isthmus.ads.v1 import ads_pb2, ads_pb2_grpc
from services.core.config import ServerConfig
from services.core.server import Binding, create_server, serve


class FixedRanker(ads_pb2_grpc.AdServiceServicer):
    async def Rank(
        self, request: ads_pb2.RankRequest, context: grpc.aio.ServicerContext
    ) -> ads_pb2.RankResponse:
        return ads_pb2.RankResponse(
            request_id=request.request_id,
            model_version="bench",
            ads=[
                ads_pb2.RankedAd(ad_id=c.ad_id, position=i + 1)
                for i, c in enumerate(request.candidates[:3])
            ],
        )


async def main() -> None:
    ranker = FixedRanker()
    binding = Binding(
        "isthmus.ads.v1.AdService",
        lambda s: ads_pb2_grpc.add_AdServiceServicer_to_server(ranker, s),
    )
    server, port = create_server(ServerConfig(reflection=False), [binding])
    print(port, flush=True)
    await serve(server)


if __name__ == "__main__":
    asyncio.run(main())
