// `npm run realfaces [-- --limit N] [-- --costly N] [-- --faces DIR]`: face-api's age and gender network on real
// photographs (../shared/realfaces: FairFace crops, labels.csv with gender, age group and a face
// box), all through the built command line as a user runs it: its gender accuracy (all, adults,
// the faces with a box), then every attack method on the faces it classifies correctly (C&W and
// the filter, which take hundreds of gradients per face, on the first --costly of them). Prints a
// Markdown table; writes the numbers to bench/realfaces.json (with --limit, a trial:
// out/realfaces/realfaces.json) and each method's contact sheet to out/realfaces/. The photographs
// are another party's data: they are read where they are, linked from a temporary folder outside
// the repository, and nothing made from them is written inside it but under out/ (not committed).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { adult, linkFolder, mislead, progress, readFaces, root, type Face } from './photos.js';

const { values } = parseArgs({ options: { faces: { type: 'string' }, limit: { type: 'string' }, costly: { type: 'string' }, workers: { type: 'string' } } });
const facesDir = resolve(values.faces ?? join(root, '../shared/realfaces'));
const limit = values.limit === undefined ? Infinity : Number(values.limit);
const workers = values.workers ?? '2';
const costly = Number(values.costly ?? 40);
if (!(costly > 0)) throw new Error(`--costly ${values.costly}: not a positive number`);
if (!(limit > 0)) throw new Error(`--limit ${values.limit}: not a positive number`);
const photos = readFaces(facesDir);
if (!photos) {
  console.log(`${facesDir}: no labels.csv there; nothing measured (the photographs are not part of the project)`);
  process.exit(0);
}
const trial = Number.isFinite(limit);
const sheets = join(root, 'out/realfaces');
const jsonPath = trial ? join(sheets, 'realfaces.json') : join(root, 'bench/realfaces.json');
const { header } = photos;
const faces: Face[] = photos.faces.slice(0, trial ? limit : undefined);

const work = mkdtempSync(join(tmpdir(), 'mislead-realfaces-'));
const folder = (name: string, chosen: Face[]) => linkFolder(work, name, facesDir, header, chosen);

try {
  const model = join(work, 'gender.safetensors');
  mislead(['import-faceapi', '--out', model]);
  const predicted = JSON.parse(mislead(['predict', folder('all', faces), '--model', model, '--json']).stdout) as { image: string; label: string }[];
  const said = new Map(predicted.map((p) => [basename(p.image), p.label]));
  const right = (f: Face) => said.get(f.file) === f.label;
  const accuracyOf = (chosen: Face[]) => ({ faces: chosen.length, correct: chosen.filter(right).length, accuracy: chosen.filter(right).length / chosen.length });
  const accuracy = { all: accuracyOf(faces), adults: accuracyOf(faces.filter(adult)), boxed: accuracyOf(faces.filter((f) => f.boxed)), adultsBoxed: accuracyOf(faces.filter((f) => adult(f) && f.boxed)) };
  progress(`accuracy: ${JSON.stringify(accuracy)}`);

  const correct = faces.filter(right);
  const few = correct.slice(0, costly);
  const folders = { all: folder('correct', correct), few: folder('few', few) };
  /** The methods, as the command line takes them (sizes in grey levels; the filter is the tutorial's:
   *  1000 steps of lr 0.1, β 0 and β 0.5, toward the other class); the costly ones on fewer faces. */
  const methods: { name: string; args: string[]; costly?: true }[] = [
    ...[1, 2, 4].map((eps) => ({ name: `PGD L∞ ε ${eps}, 40 steps`, args: ['--method', 'pgd', '--eps', String(eps), '--iters', '40'] })),
    { name: 'FGSM L∞ ε 2', args: ['--method', 'fgsm', '--eps', '2'] },
    { name: 'C&W L2', args: ['--method', 'cw'], costly: true },
    { name: 'DeepFool', args: ['--method', 'deepfool'] },
    { name: 'filter (tutorial), β 0', args: ['--method', 'filter', '--iters', '1000', '--lr', '0.1', '--beta', '0'], costly: true },
    { name: 'filter (tutorial), β 0.5 (L2)', args: ['--method', 'filter', '--iters', '1000', '--lr', '0.1', '--beta', '0.5'], costly: true },
  ];
  mkdirSync(sheets, { recursive: true });
  const results = methods.map(({ name, args, costly }, i) => {
    const out = join(work, `attack-${i}`);
    progress(`${name} on ${(costly ? few : correct).length} faces…`);
    const { ms: wall } = mislead(['attack', costly ? folders.few : folders.all, '--model', model, ...args, '--workers', workers, '--out', out, '--json', '--quiet']);
    const report = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    const s = report.summary;
    const sheet = join(sheets, `${args[1]}-${i}.png`);
    copyFileSync(join(out, 'contact.png'), sheet);
    return {
      method: name,
      args: args.join(' '),
      faces: s.images - s.skipped,
      successSaved: report.success_saved as number,
      success: s.success as number,
      medianL2: s.l2_pixels.median as number,
      medianLinf: s.linf_pixels.median as number,
      medianPsnr: s.psnr.median as number,
      medianSsim: s.ssim.median as number,
      msPerImage: s.ms as number,
      runMs: report.ms as number,
      wallMs: wall,
      sheet: `out/realfaces/${basename(sheet)}`,
    };
  });
  const pgd = results[0];
  const pgd100 = { faces: pgd.faces, wallMs: pgd.wallMs, per100FacesS: (pgd.wallMs * 100) / pgd.faces / 1000, what: 'PGD L∞ ε 1, 40 steps (stopping early once the saved file is adversarial): the whole command, start to exit, scaled to 100 faces' };

  const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)} %` : '–');
  const num = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
  const table = [
    `face-api's age and gender network (imported by mislead import-faceapi), on ${faces.length} FairFace photographs${trial ? ` (the first ${faces.length}: a trial run)` : ''}, read from their face box where labels.csv gives one:`,
    '',
    '| faces | n | gender accuracy |',
    '| --- | ---: | ---: |',
    `| all | ${accuracy.all.faces} | ${pct(accuracy.all.accuracy)} |`,
    `| adults (20+) | ${accuracy.adults.faces} | ${pct(accuracy.adults.accuracy)} |`,
    `| with a face box | ${accuracy.boxed.faces} | ${pct(accuracy.boxed.accuracy)} |`,
    `| adults with a face box | ${accuracy.adultsBoxed.faces} | ${pct(accuracy.adultsBoxed.accuracy)} |`,
    '',
    `Attacks on the ${correct.length} faces it classifies correctly (C&W and the filter, hundreds of gradients a face, on the first ${few.length}; --workers ${workers}, ${cpus().length} cores); success on the saved 8-bit files; medians over the successes; time per image as each attack reports it:`,
    '',
    '| method | faces | success (saved) | median L2 | median L∞ | PSNR dB | SSIM | ms / image | wall s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.method} | ${r.faces} | ${pct(r.successSaved)} | ${num(r.medianL2, 1)} | ${num(r.medianLinf, 1)} | ${num(r.medianPsnr, 1)} | ${num(r.medianSsim, 4)} | ${num(r.msPerImage, 0)} | ${num(r.wallMs / 1000, 1)} |`),
    '',
    `PGD-40 (ε 1) on ${pgd.faces} faces: ${num(pgd.wallMs / 1000, 1)} s for the whole command, ${num(pgd100.per100FacesS, 1)} s per 100 faces.`,
    `Contact sheets (not committed): ${results.map((r) => r.sheet).join(', ')}`,
  ];
  console.log(table.join('\n'));
  writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), faces: faces.length, trial, cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, workers: Number(workers), accuracy, attacked: correct.length, costly: few.length, methods: results.map(({ sheet: _, ...r }) => r), pgd40: pgd100 }, null, 2) + '\n');
  progress(`Numbers: ${jsonPath}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
