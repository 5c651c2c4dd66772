"""TensorFlow's own Keras (CPU) training the seed's network, the reference ms-keras is measured
against: on features exported as .npy (movie factors then user factors, from our ALS output; our
split) by tools/bench/{keras,compare} and src/tensorflow.slow.test.ts. Not published (not in the
package's files): it needs the keras venv, tools/python/ensure-venv.sh keras.

Dense(30, relu) -> Dense(HIDDEN, relu) -> Dense(1), MSE, Adam(LR), validation_split (Keras takes
the last fraction of the rows, as ms-keras does), shuffle=True, EarlyStopping on val_loss.
Usage: python keras_tf.py FEATURES_DIR EPOCHS BATCH LR PATIENCE MIN_DELTA VALIDATION_SPLIT HIDDEN SEED [INIT]
INIT: a directory of w0.npy..w5.npy, initial weights to start from (ms-keras's own, so both train
from the same point and only the trainers differ); without it Keras draws its own glorot-uniform.
MS_TF_SHUFFLE=0 trains on the rows in their given order (the parity bench and test).
Prints one JSON line: per-epoch seconds and samples/s (fit rows / epoch time, validation included,
as ms-keras logs it), test RMSE, versions.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
t0 = time.perf_counter()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

d = sys.argv[1]
epochs, batch, lr, patience = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
min_delta, vsplit, hidden, seed = float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
x_train, y_train = np.load(f"{d}/x_train.npy"), np.load(f"{d}/y_train.npy")
x_test, y_test = np.load(f"{d}/x_test.npy"), np.load(f"{d}/y_test.npy")
keras.utils.set_random_seed(seed)
t1 = time.perf_counter()

model = keras.Sequential([
    keras.Input(shape=(x_train.shape[1],)),
    keras.layers.Dense(30, activation="relu"),
    keras.layers.Dense(hidden, activation="relu"),
    keras.layers.Dense(1, activation="linear"),
])
if len(sys.argv) > 10:
    model.set_weights([np.load(f"{sys.argv[10]}/w{i}.npy") for i in range(6)])
model.compile(loss="mean_squared_error", optimizer=keras.optimizers.Adam(learning_rate=lr))


class Timer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


timer = Timer()
early = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=min_delta, patience=patience)
history = model.fit(x_train, y_train, batch_size=batch, epochs=epochs, validation_split=vsplit,
                    shuffle=os.environ.get("MS_TF_SHUFFLE", "1") != "0", verbose=0, callbacks=[timer, early])
t2 = time.perf_counter()
pred = model.predict(x_test, batch_size=8192, verbose=0).reshape(-1).astype(np.float64)
test_rmse = float(np.sqrt(np.mean((pred - y_test.astype(np.float64)) ** 2)))
fit_rows = int(len(x_train) * (1 - vsplit))
print(json.dumps({
    "tensorflow": tf.__version__,
    "keras": keras.__version__,
    "import_seconds": t1 - t0,
    "fit_seconds": t2 - t1,
    "epoch_seconds": timer.seconds,
    "fit_rows": fit_rows,
    "samples_per_second": [fit_rows / s for s in timer.seconds],
    "epochs_run": len(timer.seconds),
    "loss": [float(v) for v in history.history["loss"]],
    "val_loss": [float(v) for v in history.history.get("val_loss", [])],
    "test_rmse": test_rmse,
    "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(), "inter": tf.config.threading.get_inter_op_parallelism_threads()},
}))
