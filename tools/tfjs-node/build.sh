#!/bin/sh
# Builds @tensorflow/tfjs-node's native addon offline, from the C library inside the PyPI
# tensorflow-cpu wheel (the keras venv of tools/python/ensure-venv.sh), because its installer's
# download host refuses everyone (403; tfjs issue 8742) and no prebuilt addon is reachable.
#
#   deps/include -> the wheel's include/ (tensorflow/c/c_api.h, eager/c_api.h)
#   deps/lib/libtensorflow.so.2 -> libtensorflow_cc.so.2 (it exports the TF_/TFE_ C API),
#   deps/lib/libtensorflow_framework.so.2 -> the wheel's
# then node-gyp (npm's bundled copy) against the Node headers in /usr/include/node (--nodedir=/usr;
# nodejs.org is not reachable), into lib/napi-v8/tfjs_binding.node where tfjs-node looks.
# Usage: tools/tfjs-node/build.sh   (exit 0: `import("@tensorflow/tfjs-node")` works; else a reason)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
say() { echo "tfjs-node build: $*" >&2; }
pkg=$(cd "$root/packages/keras" && node -p 'require("path").dirname(require.resolve("@tensorflow/tfjs-node/package.json"))' 2>/dev/null) || { say "@tensorflow/tfjs-node is not installed (pnpm install)"; exit 3; }
nodedir=${MS_NODE_HEADERS:-/usr}
[ -f "$nodedir/include/node/node_api.h" ] || { say "no Node headers at $nodedir/include/node (set MS_NODE_HEADERS)"; exit 3; }
gyp=${MS_NODE_GYP:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}
[ -f "$gyp" ] || { say "node-gyp not found (npm's bundled copy; set MS_NODE_GYP)"; exit 3; }
command -v c++ >/dev/null || command -v g++ >/dev/null || { say "no C++ compiler"; exit 3; }
venv=$("$root/tools/python/ensure-venv.sh" keras) || { say "the keras venv (tensorflow-cpu) could not be built"; exit 3; }
tfdir=$("$venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("tensorflow").submodule_search_locations[0])')
[ -f "$tfdir/libtensorflow_cc.so.2" ] && [ -f "$tfdir/include/tensorflow/c/eager/c_api.h" ] || { say "$tfdir lacks libtensorflow_cc.so.2 or the C headers"; exit 3; }
napi=8
out="$pkg/lib/napi-v$napi"
if [ -f "$out/tfjs_binding.node" ] && [ "${1:-}" != "--force" ]; then
  say "already built: $out/tfjs_binding.node"
else
  mkdir -p "$pkg/deps/lib"
  rm -rf "$pkg/deps/include"
  ln -s "$tfdir/include" "$pkg/deps/include"
  # The addon links -ltensorflow, which resolves to libtensorflow_cc.so.2 by its soname: both names.
  ln -sf "$tfdir/libtensorflow_cc.so.2" "$pkg/deps/lib/libtensorflow_cc.so.2"
  ln -sf "$tfdir/libtensorflow_cc.so.2" "$pkg/deps/lib/libtensorflow.so.2"
  ln -sf libtensorflow.so.2 "$pkg/deps/lib/libtensorflow.so"
  ln -sf "$tfdir/libtensorflow_framework.so.2" "$pkg/deps/lib/libtensorflow_framework.so.2"
  ln -sf libtensorflow_framework.so.2 "$pkg/deps/lib/libtensorflow_framework.so"
  say "compiling the binding in $pkg (node-gyp, headers $nodedir/include/node)"
  (cd "$pkg" && node "$gyp" rebuild --nodedir="$nodedir" --napi_build_version=$napi --module_name=tfjs_binding --module_path="$out" >&2)
  [ -f "$out/tfjs_binding.node" ] || cp "$pkg/build/Release/tfjs_binding.node" "$out/"
fi
cd "$root/packages/keras"
node --input-type=module -e 'const tf = await import("@tensorflow/tfjs-node"); await tf.ready(); const x = tf.tensor([1, 2, 3]); if (tf.getBackend() !== "tensorflow" || tf.sum(x).dataSync()[0] !== 6) throw new Error("the tensorflow backend did not work"); console.error(`tfjs-node build: ok, backend ${tf.getBackend()}, TensorFlow ${tf.version.tfjs ? JSON.stringify(tf.version) : "?"}`);' >&2
