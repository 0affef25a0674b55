# Multi-stage build: OpenCV headers and Go to build, OpenCV runtime libraries
# only in the final image.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libopencv-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -ldflags "-X main.version=docker" -o /out/streamd .

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-videoio406 \
        libopencv-objdetect406 libopencv-calib3d406 libopencv-features2d406 libopencv-dnn406 \
        libopencv-video406 libopencv-highgui406 libopencv-photo406 libopencv-flann406 \
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
