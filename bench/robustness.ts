// `npm run robustness [-- --photos N] [-- --faces N] [-- --workers N]`: robust accuracy at ε 1, 2, 4
// and 8 grey levels (L∞) under PGD-40, APGD-CE, Square and AutoAttack (standard), through the built
// command line (`mislead eval DIR --attack M --eps 1,2,4,8`), on
//   - the default model, on --faces generated faces (default 200; `mislead dataset`, a seed it
//     was not trained on);
//   - face-api.js's gender network (imported by `mislead import-faceapi`), on the first --photos
//     FairFace photographs of ../shared/realfaces (default 60; skipped when absent), from their
//     face box. Square's 5,000 queries of a 200-MFLOP network make the full 270 an hour's run.
// Prints a Markdown table per model and writes the numbers to bench/robustness.json.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { linkFolder, mislead, progress, readFaces, root } from './photos.js';

const { values } = parseArgs({ options: { photos: { type: 'string' }, faces: { type: 'string' }, workers: { type: 'string' } } });
const photoCount = Number(values.photos ?? 60), faceCount = Number(values.faces ?? 200);
const workers = values.workers ?? '2';
for (const [flag, n] of [['--photos', photoCount], ['--faces', faceCount]] as const) {
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`${flag} ${n}: not a positive whole number`);
}
const ATTACKS = ['pgd', 'apgd-ce', 'square', 'autoattack'] as const;
const NAMES: Record<(typeof ATTACKS)[number], string> = { pgd: 'PGD-40', 'apgd-ce': 'APGD-CE', square: 'Square', autoattack: 'AutoAttack' };
const EPS = [1, 2, 4, 8];

interface Point { eps: number; accuracy: number; attacked?: number; ms_per_image?: number; gradients?: number; queries?: number; broken_by?: Record<string, number> }

const work = mkdtempSync(join(tmpdir(), 'mislead-robustness-'));
try {
  const sets: { name: string; model: string; dir: string; images: number }[] = [];
  const faces = join(work, 'faces');
  mislead(['dataset', '--out', faces, '--count', String(faceCount), '--seed', '4242']);
  sets.push({ name: `the default model, on ${faceCount} generated faces`, model: join(root, 'weights/default.safetensors'), dir: faces, images: faceCount });
  const realDir = join(root, '../shared/realfaces');
  const photos = readFaces(realDir);
  if (photos) {
    const model = join(work, 'gender.safetensors');
    mislead(['import-faceapi', '--out', model]);
    const chosen = photos.faces.slice(0, photoCount);
    sets.push({ name: `face-api.js's gender network, on ${chosen.length} FairFace photographs`, model, dir: linkFolder(work, 'photos', realDir, photos.header, chosen), images: chosen.length });
  } else progress(`${realDir}: absent; face-api.js's network is not measured`);

  const tables: string[] = [];
  const measured = sets.map((set) => {
    const rows = ATTACKS.map((attack) => {
      progress(`${attack} on ${set.name}…`);
      const { stdout, ms } = mislead(['eval', set.dir, '--model', set.model, '--attack', attack, '--eps', ['0', ...EPS].join(','), '--workers', workers, '--out', join(work, `out-${attack}`), '--force', '--json']);
      const points = (JSON.parse(stdout) as { points: Point[] }).points;
      return { attack, points, wallMs: ms };
    });
    const clean = rows[0].points[0].accuracy;
    const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
    const ms = (p: Point) => (p.ms_per_image === undefined ? '–' : p.ms_per_image < 100 ? p.ms_per_image.toFixed(1) : p.ms_per_image.toFixed(0));
    tables.push(
      `Robust accuracy of ${set.name} (clean accuracy ${pct(clean)}), L∞, ε in grey levels; ms per attacked image in brackets:`,
      '',
      `| attack | ${EPS.map((e) => `ε ${e}`).join(' | ')} | wall s |`,
      `| --- | ${EPS.map(() => '---:').join(' | ')} | ---: |`,
      ...rows.map(({ attack, points, wallMs }) => `| ${NAMES[attack]} | ${points.slice(1).map((p) => `${pct(p.accuracy)} (${ms(p)})`).join(' | ')} | ${(wallMs / 1000).toFixed(1)} |`),
      '',
    );
    return { set: set.name, images: set.images, clean, attacks: rows };
  });
  console.log(tables.join('\n'));
  const path = join(root, 'bench/robustness.json');
  writeFileSync(path, JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, workers: Number(workers), eps: EPS, sets: measured }, null, 2) + '\n');
  progress(`Numbers: ${path}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
