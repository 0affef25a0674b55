# streamd — `make run` and `make test` do all set-up on a fresh Debian 12.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BIN      := bin/streamd
CONFIG   ?= config/streamd.yaml
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO       ?= go
GO_MIN   := 1.26
# Debian packages: OpenCV 4.6 for gocv v0.31.0, its Haar cascades and sample
# videos, and the real Kafka clients, browser and proxy the tests use.
DEB_PKGS := pkg-config curl openssl libopencv-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev opencv-data opencv-doc kcat python3-kafka chromium firefox-esr nginx-light docker-compose mosquitto mosquitto-clients
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

PREFIX   ?= /usr/local
DESTDIR  ?=

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The object detector's model (docs/objects.md): two files of an npm
# package, fetched with npm pack into .cache/npm, the tarball's checksum and
# the files' checked, and installed where the analyzer looks by default.
MODEL_PKG    := @vladmandic/human@3.3.6
MODEL_TGZ    := vladmandic-human-3.3.6.tgz
MODEL_SHA512 := sha512-Nr5mPfq1gQ+uKeXY5uM3Fj8UxvF5CEh2s6txM5wRThqaW0mF9huooOuZSrT8hhGho0hGaXLFdAwfD/2+teCv6A==
MODEL_FILES  := bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05 centernet.json 1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef centernet.bin
MODEL_CACHE  := .cache/models
MODEL_DIR    := /usr/local/share/streamd/models
# NODEPS=1 skips installing Debian packages (for make install in tests and
# packaging, where they are known to be there).
DEPS     := $(if $(NODEPS),,deps)

.PHONY: deps model build build-nocv run test test-unit test-e2e bench soak vet clean install

## deps: install the Debian packages that are missing, and check Go
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v npm >/dev/null || { echo "installing Debian package: npm (it fetches the object model)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends npm; }
	@$(MAKE) -s model
	@if ! (cd $(MODEL_DIR) 2>/dev/null && printf '%s  %s\n' $(MODEL_FILES) | sha256sum --quiet -c - 2>/dev/null); then \
		echo "installing the object model in $(MODEL_DIR)"; \
		$(SUDO) install -d -m 0755 $(MODEL_DIR) && \
		$(SUDO) install -m 0644 $(MODEL_CACHE)/centernet.json $(MODEL_CACHE)/centernet.bin $(MODEL_DIR)/; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go $(GO_MIN) or newer is needed: https://go.dev/dl/ (Debian's golang package is too old)"; exit 1; }
	@v=$$($(GO) env GOVERSION | sed 's/^go//'); \
	if [ "$$(printf '%s\n%s\n' "$(GO_MIN)" "$$v" | sort -V | head -1)" != "$(GO_MIN)" ]; then \
		echo "Go $$v is too old: streamd needs Go $(GO_MIN) or newer"; exit 1; fi

## model: the object model's files in .cache/models, from npm, checksums checked
model:
	@if ! (cd $(MODEL_CACHE) 2>/dev/null && printf '%s  %s\n' $(MODEL_FILES) | sha256sum --quiet -c - 2>/dev/null); then \
		command -v npm >/dev/null || { echo "npm is needed to fetch the object model (Debian: apt-get install npm)"; exit 1; }; \
		mkdir -p .cache/npm $(MODEL_CACHE); \
		if [ ! -f .cache/npm/$(MODEL_TGZ) ]; then \
			echo "fetching the object model: npm pack $(MODEL_PKG)"; \
			(cd .cache/npm && npm pack --silent $(MODEL_PKG) >/dev/null) || exit 1; \
		fi; \
		sum=sha512-$$(openssl dgst -sha512 -binary .cache/npm/$(MODEL_TGZ) | base64 -w0); \
		if [ "$$sum" != "$(MODEL_SHA512)" ]; then \
			echo ".cache/npm/$(MODEL_TGZ): checksum $$sum, want $(MODEL_SHA512); removed"; rm -f .cache/npm/$(MODEL_TGZ); exit 1; fi; \
		tar -xzf .cache/npm/$(MODEL_TGZ) -C $(MODEL_CACHE) --strip-components=2 package/models/centernet.json package/models/centernet.bin && \
		(cd $(MODEL_CACHE) && printf '%s  %s\n' $(MODEL_FILES) | sha256sum --quiet -c -) || exit 1; \
	fi

## build: compile bin/streamd
build: $(DEPS)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) .

## build-nocv: compile bin/streamd-nocv without OpenCV or cgo (consumer role only)
build-nocv:
	CGO_ENABLED=0 $(GO) build -tags nocv -ldflags "-X main.version=$(VERSION)" -o bin/streamd-nocv .

## run: build and run the all-in-one default (embedded broker, test pattern, sample video)
run: build
	@echo "starting streamd with $(CONFIG); it prints the URL to open (Ctrl-C stops it)"
	exec ./$(BIN) --config $(CONFIG)

## test: install what is missing, then every test: the hermetic unit tests, then the end-to-end ones
test: deps vet test-unit test-e2e

## test-unit: `go test ./...`: unit tests, the in-process broker, real servers on 127.0.0.1:0 (needs Go and OpenCV only)
# The race pass leaves out the recording scenarios the plain pass runs
# (the tiers and the byte budget, in capture time; the recorder restarts
# with and without a backlog): the recorder's concurrency (consumer,
# encode workers, commits, a stop and a restart) is raced by
# TestRecordingSurvivesRestart.
# -parallel 4: the parallel tests (the recording scenarios) mostly wait;
# -p 4: so do whole packages (the app's and the notifier's tests wait for
# Kafka, events and receivers), and unit tests have no timing bounds
# (1 min 53 s -> 1 min 27 s for the first pass, 71 -> 62 s for the race
# pass, here).
test-unit:
	$(GO) test -count=1 -timeout 10m -p 4 -parallel 4 ./...
	$(GO) test -count=1 -race -timeout 10m -p 4 -parallel 4 -skip '^(TestRecording(Tiers|Budget)|TestRecorderRestartLeavesNoGap|TestStopWithARecorderBacklog)$$' ./pkg/hub ./pkg/mjpeg ./pkg/frame ./pkg/kafka ./pkg/config ./pkg/web ./pkg/lograte ./pkg/app ./pkg/events ./pkg/record ./pkg/broker ./pkg/review ./pkg/eventfeed ./pkg/redact

## test-e2e: processes, Kafka clients, browsers, nginx, systemd, install (the e2e module, tag e2e)
# -p 1: one test binary at a time, so that the timing checks (latency,
# recovery within seconds) do not compete with each other for the cores.
# Tests that only wait, with no timing bound, call t.Parallel: they run
# together after the others, four at a time (-parallel 4: they mostly wait
# for frames, events and recordings to accumulate).
test-e2e:
	cd e2e && $(GO) test -tags e2e -p 1 -parallel 4 -count=1 -timeout 30m ./...

## bench: Go benchmarks of the hot paths, with allocations
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/hub ./pkg/mjpeg ./pkg/capture

## soak: 10 minutes all-in-one at 720p30 with 50 viewers joining and leaving (SOAK_DURATION=… to change)
soak: deps
	cd e2e && $(GO) test -tags "e2e soak" -count=1 -timeout 30m -run TestSoak -v . 2>&1 | grep -E 'RSS|FAIL|PASS|ok|keeps growing|lost|soak_test'

## vet: go vet, staticcheck and gofmt, on both modules; the nocv binary builds for macOS
vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet -tags nocv . ./pkg/app ./pkg/config
	@deps=$$($(GO) list -deps ./pkg/config | grep -E 'sarama|franz-go|go-chi'); if [ -n "$$deps" ]; then echo "pkg/config must not depend on:"; echo "$$deps"; exit 1; fi
	GOOS=darwin CGO_ENABLED=0 $(GO) build -tags nocv -o /dev/null .
	cd e2e && $(GO) vet -tags e2e ./...
	$(GO) run $(STATICCHECK) ./...
	cd e2e && $(GO) run $(STATICCHECK) -tags e2e ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## install: binary, systemd unit, configs (/etc/streamd/{producer,consumer,analyzer,recorder,notifier,all}.yaml, kept if present),
## nginx site; with no DESTDIR also the streamd user and a systemd reload
install: build model
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/streamd
	install -d -m 0755 $(DESTDIR)$(MODEL_DIR)
	install -m 0644 $(MODEL_CACHE)/centernet.json $(MODEL_CACHE)/centernet.bin $(DESTDIR)$(MODEL_DIR)/
	install -d -m 0755 $(DESTDIR)/etc/systemd/system $(DESTDIR)/etc/streamd $(DESTDIR)/etc/nginx/sites-available
	sed 's#/usr/local/bin/streamd#$(PREFIX)/bin/streamd#' systemd/streamd@.service > $(DESTDIR)/etc/systemd/system/streamd@.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/streamd@.service
	@for pair in producer:config/producer.yaml consumer:config/consumer.yaml analyzer:config/analyzer.yaml recorder:config/recorder.yaml notifier:config/notifier.yaml all:config/streamd.yaml; do \
		role=$${pair%%:*}; src=$${pair#*:}; dst=$(DESTDIR)/etc/streamd/$$role.yaml; \
		if [ -e $$dst ]; then echo "keeping $$dst"; else install -m 0640 $$src $$dst; fi; \
	done
	install -m 0644 nginx/streamd.conf $(DESTDIR)/etc/nginx/sites-available/streamd
	@if [ -z "$(DESTDIR)" ]; then \
		id streamd >/dev/null 2>&1 || $(SUDO) useradd --system --home-dir /var/lib/streamd --no-create-home --shell /usr/sbin/nologin streamd; \
		$(SUDO) chgrp streamd /etc/streamd/*.yaml; \
		if [ -d /run/systemd/system ]; then $(SUDO) systemctl daemon-reload; fi; \
		echo "installed: systemctl enable --now streamd@all (or @producer, @consumer); nginx: link /etc/nginx/sites-available/streamd"; \
	fi

clean:
	rm -rf bin data
