/**
 * The model a server answers with, swapped without dropping a request: every request takes the
 * current model (`acquire`) and gives it back when answered (`release`); a swap points new
 * requests at the new model at once and disposes of the old one only when the last request that
 * holds it is done.
 */

/** What a slot holds: anything with a dispose. */
export interface Disposable {
  dispose(): void;
}

interface Held<M> {
  model: M;
  users: number;
  retired: boolean;
}

export class ModelSlot<M extends Disposable> {
  private held: Held<M>;
  private readonly byModel = new Map<M, Held<M>>();

  constructor(model: M) {
    this.held = { model, users: 0, retired: false };
    this.byModel.set(model, this.held);
  }

  get current(): M {
    return this.held.model;
  }

  /** The current model, held until `release(model)`. */
  acquire(): M {
    this.held.users++;
    return this.held.model;
  }

  release(model: M): void {
    const h = this.byModel.get(model);
    if (!h) return;
    h.users--;
    this.disposeIfDone(h);
  }

  /** New requests get `model`; the old one is disposed of once no request holds it. */
  swap(model: M): void {
    const old = this.held;
    this.held = { model, users: 0, retired: false };
    this.byModel.set(model, this.held);
    old.retired = true;
    this.disposeIfDone(old);
  }

  /** Disposes of the current model (at shutdown, after the last request). */
  close(): void {
    this.held.retired = true;
    this.disposeIfDone(this.held);
  }

  private disposeIfDone(h: Held<M>): void {
    if (!h.retired || h.users > 0 || !this.byModel.has(h.model)) return;
    this.byModel.delete(h.model);
    h.model.dispose();
  }
}
