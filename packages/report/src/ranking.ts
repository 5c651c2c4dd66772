/**
 * The report's ranking parts: a table of every model's top-k metrics (shown beside the test RMSE
 * chart: a model can predict ratings well and rank badly), and the sample users, each with the
 * default recommender's top list beside their own highest-rated movies. The data is the ranking
 * step's (the driver reads it from the run's entry); this module only writes HTML.
 */

/** One model's ranking metrics (means over the evaluated users). */
export interface RankingRow {
  model: string;
  ndcg: number;
  precision: number;
  recall: number;
  map: number;
  hitRate: number;
  coverage: number;
  popularityBias: number;
}

export interface SampleUser {
  userId: number;
  rated: number;
  recommendations: { movieId: number; title: string | null; score: number; relevant: boolean }[];
  favourites: { movieId: number; title: string | null; rating: number }[];
}

/** What the report shows of the ranking step. */
export interface RankingSummary {
  k: number;
  minRating: number;
  users: number;
  catalog: number;
  models: readonly RankingRow[];
  sampleModel: string;
  samples: readonly SampleUser[];
  notes: readonly string[];
}

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const COLUMNS: readonly [keyof RankingRow, string][] = [
  ["ndcg", "nDCG"],
  ["precision", "precision"],
  ["recall", "recall"],
  ["map", "MAP"],
  ["hitRate", "hit rate"],
  ["coverage", "coverage"],
  ["popularityBias", "pop. bias"],
];

const num = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : "-");

/** The metrics table, as a figure of the charts grid (the best value of each column in bold). */
export function rankingFigure(r: RankingSummary): string {
  const best = new Map<string, number>();
  for (const [key] of COLUMNS) if (key !== "popularityBias") best.set(key, Math.max(...r.models.map((m) => m[key] as number)));
  const head = COLUMNS.map(([, label]) => `<th>${label}</th>`).join("");
  const rows = r.models
    .map((m) => {
      const cells = COLUMNS.map(([key]) => {
        const v = m[key] as number;
        const text = key === "popularityBias" ? num(v, 1) : num(v, 4);
        return `<td class="num">${best.get(key) === v && r.models.length > 1 ? `<b>${text}</b>` : text}</td>`;
      }).join("");
      const name = m.model === r.sampleModel ? `${escapeHtml(m.model)} <span class="muted">(default)</span>` : escapeHtml(m.model);
      return `<tr><td>${name}</td>${cells}</tr>`;
    })
    .join("\n");
  const rule = r.minRating > 0 ? `test ratings of at least ${r.minRating}` : "every test rating";
  const notes = r.notes.map((n) => `<div class="muted">${escapeHtml(n)}</div>`).join("");
  return `<figure id="ranking-metrics" class="table"><figcaption>Ranking: every model's top ${r.k} (metrics at k = ${r.k})</figcaption>
<table><thead><tr><th>model</th>${head}</tr></thead><tbody>
${rows}
</tbody></table>
<div class="muted">${r.users} users, ${r.catalog} candidate movies; each user's training movies removed; relevant: ${rule}. Coverage: share of the catalog in any list; pop. bias: mean training ratings of a recommended movie.</div>${notes}
</figure>`;
}

const titleOf = (m: { movieId: number; title: string | null }) => escapeHtml(m.title ?? `movie ${m.movieId}`);

/** The sample users: the default recommender's list beside the user's highest-rated movies. */
export function samplesSection(r: RankingSummary): string {
  if (!r.samples.length) return "";
  const users = r.samples.map((s) => {
    const recs = s.recommendations
      .map(
        (m, i) =>
          `<tr><td>${i + 1}</td><td>${titleOf(m)}${m.relevant ? ' <span title="in the user\'s test ratings">✓</span>' : ""}</td><td class="num">${num(m.score, 3)}</td></tr>`,
      )
      .join("");
    const favs = s.favourites.map((m) => `<tr><td>${titleOf(m)}</td><td class="num">${num(m.rating, 1)}</td></tr>`).join("");
    return `<div class="sample" id="sample-${s.userId}"><h3>User ${s.userId} <span class="muted">(${s.rated} training ratings)</span></h3><div class="grid">
<table><thead><tr><th>#</th><th>recommended (${escapeHtml(r.sampleModel)})</th><th>score</th></tr></thead><tbody>${recs}</tbody></table>
<table><thead><tr><th>their highest-rated</th><th>rating</th></tr></thead><tbody>${favs}</tbody></table>
</div></div>`;
  });
  return `<h2>What the default recommender suggests</h2>
<p class="muted">Sample users (a light, a middling and a heavy rater among those evaluated): the top ${r.samples[0].recommendations.length} of ${escapeHtml(r.sampleModel)} beside their own highest-rated movies; ✓ marks a movie they rated in the test part.</p>
${users.join("\n")}`;
}
