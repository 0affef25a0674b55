# Two images from one file:
#   docker build -t streamd .                      # full: every role, OpenCV runtime libraries
#   docker build --target consumer -t streamd-web . # slim: consumer role only, no OpenCV, no cgo
# The full image is the last stage, so a plain build gives it.

FROM golang:1.26-bookworm AS build-nocv
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -tags nocv -ldflags "-X main.version=docker" -o /out/streamd .

# The slim web node: relays Kafka to browsers. A producer or analyzer
# config is refused with exit code 2.
FROM debian:bookworm-slim AS consumer
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/streamd --create-home streamd
COPY --from=build-nocv /out/streamd /usr/local/bin/streamd
COPY config/ /etc/streamd/
USER streamd
WORKDIR /var/lib/streamd
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/streamd"]
CMD ["--config", "/etc/streamd/consumer.yaml"]

FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libopencv-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -ldflags "-X main.version=docker" -o /out/streamd .

FROM debian:bookworm-slim AS full
RUN apt-get update && apt-get install -y --no-install-recommends \
        libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-videoio406 \
        libopencv-objdetect406 libopencv-calib3d406 libopencv-features2d406 libopencv-dnn406 \
        libopencv-video406 libopencv-highgui406 libopencv-photo406 libopencv-flann406 \
        libavcodec59 libavformat59 libavutil57 libswscale6 \
        opencv-data ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/streamd --create-home streamd
COPY --from=build /out/streamd /usr/local/bin/streamd
COPY config/ /etc/streamd/
USER streamd
WORKDIR /var/lib/streamd
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/streamd"]
CMD ["--config", "/etc/streamd/streamd.yaml"]
