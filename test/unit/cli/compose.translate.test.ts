// Compose files → scores: each key that maps onto a score, and every other key refused by name.
import { expect } from "chai";
import { parse } from "yaml";
import { isComposeShape, shellWords, translateCompose } from "../../../cli/compose.translate.js";

const translate = (yaml: string) => translateCompose(parse(yaml, { merge: true }));

/** [title, compose file, the score's data it becomes]. */
const TRANSLATED: Array<[string, string, unknown]> = [
  ["image only", "services:\n  web:\n    image: localhost/app:v2\n", { services: [{ name: "web", image: "localhost/app:v2" }] }],
  [
    "command as a string is split like a shell, without one",
    `services:\n  web:\n    image: app\n    command: /bin/app --name "a b" 'c d' e\\ f\n`,
    { services: [{ name: "web", image: "app", command: ["/bin/app", "--name", "a b", "c d", "e f"] }] },
  ],
  ["command as a list; numbers become strings", "services:\n  web:\n    image: app\n    command: [sleep, 10]\n", { services: [{ name: "web", image: "app", command: ["sleep", "10"] }] }],
  [
    "entrypoint goes ahead of the command",
    "services:\n  web:\n    image: app\n    entrypoint: [/bin/sh, -c]\n    command: [echo hi]\n",
    { services: [{ name: "web", image: "app", command: ["/bin/sh", "-c", "echo hi"] }] },
  ],
  [
    "environment as a map (scalars become strings) and as a list",
    "services:\n  web:\n    image: app\n    environment:\n      MODE: prod\n      WORKERS: 4\n      DEBUG: false\n  db:\n    image: db\n    environment:\n      - PGDATA=/var/lib/pg\n      - EMPTY=\n      - URL=a=b\n",
    {
      services: [
        { name: "web", image: "app", env: { MODE: "prod", WORKERS: "4", DEBUG: "false" } },
        { name: "db", image: "db", env: { PGDATA: "/var/lib/pg", EMPTY: "", URL: "a=b" } },
      ],
    },
  ],
  [
    "ports: short form with protocol, ranges, long form",
    "services:\n  web:\n    image: app\n    ports:\n      - \"8080:80\"\n      - 5353:53/udp\n      - 9000-9001:9000-9001\n      - target: 443\n        published: \"8443\"\n        protocol: tcp\n",
    {
      services: [
        {
          name: "web",
          image: "app",
          ports: [
            { host_port: 8080, container_port: 80 },
            { host_port: 5353, container_port: 53, protocol: "udp" },
            { host_port: 9000, container_port: 9000 },
            { host_port: 9001, container_port: 9001 },
            { host_port: 8443, container_port: 443, protocol: "tcp" },
          ],
        },
      ],
    },
  ],
  [
    "bind volumes: short form with ro/rw, long form",
    "services:\n  web:\n    image: app\n    volumes:\n      - /srv/data:/data\n      - /srv/conf:/etc/app:ro\n      - type: bind\n        source: /srv/logs\n        target: /logs\n        read_only: false\n",
    {
      services: [
        {
          name: "web",
          image: "app",
          volumes: [
            { source: "/srv/data", target: "/data" },
            { source: "/srv/conf", target: "/etc/app", read_only: true },
            { source: "/srv/logs", target: "/logs", read_only: false },
          ],
        },
      ],
    },
  ],
  [
    "healthcheck: test as a list or a shell string, durations as whole seconds",
    "services:\n  web:\n    image: app\n    healthcheck:\n      test: [CMD, wget, -qO-, localhost]\n      interval: 1m30s\n      timeout: 5s\n      retries: 3\n      start_period: 0s\n  db:\n    image: db\n    healthcheck:\n      test: pg_isready -U app\n",
    {
      services: [
        { name: "web", image: "app", health: { cmd: ["CMD", "wget", "-qO-", "localhost"], interval_secs: 90, timeout_secs: 5, retries: 3, start_period_secs: 0 } },
        { name: "db", image: "db", health: { cmd: ["CMD-SHELL", "pg_isready -U app"] } },
      ],
    },
  ],
  [
    "stop_signal (with or without SIG) and stop_grace_period become the score's lifecycle",
    "services:\n  web:\n    image: app\n    stop_signal: INT\n    stop_grace_period: 1m\n  db:\n    image: db\n    stop_signal: SIGINT\n",
    { services: [{ name: "web", image: "app" }, { name: "db", image: "db" }], lifecycle: { stop_signal: "SIGINT", grace_period_secs: 60 } },
  ],
  [
    "depends_on as a list and as a map with condition service_started",
    "services:\n  web:\n    image: app\n    depends_on: [api]\n  api:\n    image: api\n    depends_on:\n      db:\n        condition: service_started\n  db:\n    image: db\n",
    { services: [{ name: "web", image: "app", depends_on: ["api"] }, { name: "api", image: "api", depends_on: ["db"] }, { name: "db", image: "db" }] },
  ],
  ["restart: always / unless-stopped is what the agent does anyway", "services:\n  web:\n    image: app\n    restart: unless-stopped\n", { services: [{ name: "web", image: "app" }] }],
  [
    "YAML anchors and merge keys, x- extension fields, $$ for a literal $",
    "x-common: &common\n  image: app\n  restart: always\nservices:\n  web:\n    <<: *common\n    command: [echo, \"$$HOME\"]\n",
    { services: [{ name: "web", image: "app", command: ["echo", "$HOME"] }] },
  ],
];

/** [title, compose file, every error line]. */
const REFUSED: Array<[string, string, string[]]> = [
  ["deploy, named by its path", "services:\n  web:\n    image: app\n    deploy:\n      replicas: 2\n", ["services.web.deploy: not supported by fleet-agent"]],
  [
    "every unsupported key at once, top level and per service",
    "name: shop\nnetworks: {}\nvolumes:\n  data: {}\nservices:\n  web:\n    image: app\n    container_name: shop-web\n    build: .\n    privileged: true\n    labels: [a=b]\n",
    [
      "name: not supported by fleet-agent (the deployment is named on the command line)",
      "networks: not supported by fleet-agent (services use Podman's default network)",
      "volumes: not supported by fleet-agent",
      "services.web.container_name: not supported by fleet-agent (containers are named <deployment>.<service>)",
      "services.web.build: not supported by fleet-agent (it runs images, it does not build them: build and push the image, then give `image`)",
      "services.web.privileged: not supported by fleet-agent",
      "services.web.labels: not supported by fleet-agent",
    ],
  ],
  ["no image", "services:\n  web:\n    command: [x]\n", ["services.web.image: required (it runs images, it does not build them: build and push the image, then give `image`)"]],
  [
    "ports that do not map",
    "services:\n  web:\n    image: app\n    ports:\n      - 80\n      - \"127.0.0.1:8080:80\"\n      - \"8080\"\n      - target: 80\n        published: 8081\n        mode: host\n",
    [
      "services.web.ports[0]: a container port alone is not supported by fleet-agent (Compose publishes it on a random host port; a score names the host port: write \"HOST:CONTAINER\")",
      "services.web.ports[1]: a host IP (127.0.0.1) is not supported by fleet-agent (a port is published on every address of the device)",
      "services.web.ports[2]: a container port alone is not supported by fleet-agent (Compose publishes it on a random host port; a score names the host port: write \"HOST:CONTAINER\")",
      "services.web.ports[3].mode: not supported by fleet-agent",
    ],
  ],
  [
    "volumes that are not bind mounts of absolute paths",
    "services:\n  web:\n    image: app\n    volumes:\n      - data:/data\n      - ./conf:/conf\n      - /cache\n      - /srv/x:/x:z\n      - type: volume\n        source: data\n        target: /d\n",
    [
      'services.web.volumes[0]: the named volume "data" is not supported by fleet-agent (only bind mounts of absolute paths on the device)',
      "services.web.volumes[1]: a relative host path (./conf) is not supported by fleet-agent (the source is a path on the device: write it absolute)",
      "services.web.volumes[2]: an anonymous volume (/cache) is not supported by fleet-agent (only bind mounts of absolute paths on the device)",
      'services.web.volumes[3]: the mount option "z" is not supported by fleet-agent (only ro or rw)',
      'services.web.volumes[4].type: "volume" is not supported by fleet-agent (only bind mounts of absolute paths on the device)',
      'services.web.volumes[4]: the named volume "data" is not supported by fleet-agent (only bind mounts of absolute paths on the device)',
    ],
  ],
  [
    "environment without values, interpolation",
    "services:\n  web:\n    image: \"app:${TAG}\"\n    environment:\n      HOME_DIR: null\n",
    [
      "services.web.image: variable interpolation ($NAME, ${NAME}) is not supported by fleet-agent: write the value (or $$ for a literal $)",
      "services.web.environment.HOME_DIR: HOME_DIR has no value (Compose would take it from the shell that runs it; fleet-agent has no such shell: write the value)",
    ],
  ],
  [
    "an environment variable without a value",
    "services:\n  web:\n    image: app\n    environment:\n      - TOKEN\n",
    ["services.web.environment[0]: TOKEN has no value (Compose would take it from the shell that runs it; fleet-agent has no such shell: write the value)"],
  ],
  [
    "healthcheck details that do not map",
    "services:\n  web:\n    image: app\n    healthcheck:\n      test: [NONE]\n      interval: 500ms\n      start_interval: 1s\n  db:\n    image: db\n    healthcheck:\n      interval: 10s\n",
    [
      "services.web.healthcheck.test: NONE (turning off the image's check) is not supported by fleet-agent: leave healthcheck out instead",
      "services.web.healthcheck.interval: 500ms is not a whole number of seconds of at least 1 (a score counts in seconds)",
      "services.web.healthcheck.start_interval: not supported by fleet-agent",
      "services.db.healthcheck.test: required (the agent runs the score's own check, not the image's HEALTHCHECK)",
    ],
  ],
  [
    "services that disagree on the score-wide lifecycle",
    "services:\n  web:\n    image: app\n    stop_grace_period: 10s\n  db:\n    image: db\n    stop_grace_period: 20s\n    stop_signal: SIGFOO\n",
    [
      "services.db.stop_grace_period: 20 differs from services.web.stop_grace_period (10): a score has one stop grace period for all its services",
      "services.db.stop_signal: expected one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM, SIGWINCH, SIGPWR, got \"SIGFOO\"",
    ],
  ],
  [
    "depends_on that does not map",
    "services:\n  web:\n    image: app\n    depends_on:\n      dbb: {}\n      api:\n        condition: service_healthy\n        restart: true\n  api:\n    image: api\n  db:\n    image: db\n",
    [
      "services.web.depends_on.dbb: no service \"dbb\" in this file (did you mean db?)",
      'services.web.depends_on.api.condition: "service_healthy" is not supported by fleet-agent (a service starts after what it depends on has started, not once it is healthy or done: only service_started)',
      "services.web.depends_on.api.restart: not supported by fleet-agent",
    ],
  ],
  ["restart: no", "services:\n  web:\n    image: app\n    restart: \"no\"\n", ['services.web.restart: "no" is not supported by fleet-agent (it restarts every service that stops: only "always" or "unless-stopped" say so)']],
  ["a service name that is not a DNS label", "services:\n  My_App:\n    image: app\n", ["services.My_App: invalid service name for fleet-agent: must be a DNS label ([a-z0-9-], not starting or ending with '-'), got \"My_App\""]],
  ["a dependency cycle, in the codec's words", "services:\n  a:\n    image: app\n    depends_on: [b]\n  b:\n    image: app\n    depends_on: [a]\n", ["services.a (score data.services[0].depends_on): dependency cycle a → b → a"]],
  ["an invalid image reference, in the codec's words", "services:\n  web:\n    image: \"My App\"\n", ['services.web (score data.services[0].image): not a valid image reference: "My App"']],
];

describe("Compose files as scores", () => {
  it("a file is Compose by its shape: a top-level services map, no type or data", () => {
    expect(isComposeShape({ services: { web: { image: "x" } } })).to.equal(true);
    expect(isComposeShape({ type: "PodmanV0", data: { services: [] } })).to.equal(false);
    expect(isComposeShape({ services: [{ name: "web" }] })).to.equal(false);
    expect(isComposeShape({ type: "PodmanV0", services: {} })).to.equal(false);
  });

  describe(`translated (${TRANSLATED.length} files)`, () => {
    for (const [title, yaml, data] of TRANSLATED) {
      it(title, () => {
        const r = translate(yaml);
        expect(r.ok, r.ok ? "" : r.errors.join("\n")).to.equal(true);
        if (r.ok) expect(r.score).to.deep.equal({ type: "PodmanV0", data });
      });
    }
  });

  describe(`refused, every key named (${REFUSED.length} files)`, () => {
    for (const [title, yaml, errors] of REFUSED) {
      it(title, () => {
        const r = translate(yaml);
        expect(r).to.deep.equal({ ok: false, errors });
      });
    }
  });

  it("says what it approximated: entrypoint folding, a lifecycle set on one service, ignored keys", () => {
    const r = translate("version: \"3.8\"\nx-a: 1\nservices:\n  web:\n    image: app\n    entrypoint: /bin/app\n    stop_grace_period: 5s\n  db:\n    image: db\n");
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.notes).to.deep.equal([
      "version: ignored (obsolete in the Compose specification, it changes nothing)",
      "x-a: an extension field, not translated (Compose ignores it too)",
      "services.web.entrypoint: folded into the score's command, ahead of the command; a score keeps the image's own ENTRYPOINT, so this runs as written only for an image without one",
      "lifecycle.grace_period_secs 5 (from services.web.stop_grace_period) applies to every service of the score, also db",
    ]);
  });

  it("never puts an environment value in an error", () => {
    const r = translate("services:\n  web:\n    image: app\n    environment:\n      PASSWORD: \"hunter2-${X}\"\n      \"1BAD\": hunter3\n");
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.errors.join("\n")).to.not.match(/hunter/);
  });

  it("splits words as a shell does, without expanding anything", () => {
    expect(shellWords(`a "b c" 'd e' f\\ g "h\\"i" ''`)).to.deep.equal(["a", "b c", "d e", "f g", 'h"i', ""]);
    expect(shellWords(`a "b`)).to.equal(null);
    expect(shellWords("  ")).to.deep.equal([]);
  });
});
