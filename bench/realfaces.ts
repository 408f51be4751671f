// `npm run realfaces [-- --limit N] [-- --faces DIR]`: face-api's age and gender network on real
// photographs (../shared/realfaces: FairFace crops, labels.csv with gender, age group and a face
// box), all through the built command line as a user runs it: its gender accuracy (all, adults,
// the faces with a box), then every attack method on the faces it classifies correctly. Prints a
// Markdown table; writes the numbers to bench/realfaces.json (with --limit, a trial:
// out/realfaces/realfaces.json) and each method's contact sheet to out/realfaces/. The photographs
// are another party's data: they are read where they are, linked from a temporary folder outside
// the repository, and nothing made from them is written inside it but under out/ (not committed).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { faces: { type: 'string' }, limit: { type: 'string' }, workers: { type: 'string' } } });
const facesDir = resolve(values.faces ?? join(root, '../shared/realfaces'));
const limit = values.limit === undefined ? Infinity : Number(values.limit);
const workers = values.workers ?? '2';
if (!(limit > 0)) throw new Error(`--limit ${values.limit}: not a positive number`);
if (!existsSync(join(facesDir, 'labels.csv'))) {
  console.log(`${facesDir}: no labels.csv there; nothing measured (the photographs are not part of the project)`);
  process.exit(0);
}
const trial = Number.isFinite(limit);
const sheets = join(root, 'out/realfaces');
const jsonPath = trial ? join(sheets, 'realfaces.json') : join(root, 'bench/realfaces.json');
const progress = (line: string) => process.stderr.write(`${line}\n`);

/** The built command line; its stdout, and its wall time in ms. */
function mislead(args: string[]): { stdout: string; ms: number } {
  const start = performance.now();
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`mislead ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return { stdout: r.stdout, ms: performance.now() - start };
}

interface Face {
  file: string;
  label: string;
  age: string;
  /** The row of labels.csv, as it is. */
  line: string;
  boxed: boolean;
}
const [header, ...lines] = readFileSync(join(facesDir, 'labels.csv'), 'utf8').trim().split(/\r?\n/);
const columns = header.split(',');
const at = (name: string) => columns.indexOf(name);
const faces: Face[] = lines.slice(0, trial ? limit : undefined).map((line) => {
  const cells = line.split(',');
  return { file: cells[at('file')], label: cells[at('label')], age: cells[at('age')], line, boxed: cells[at('face_x')] !== '' };
});
const adult = (f: Face) => !['0-2', '3-9', '10-19'].includes(f.age);

const work = mkdtempSync(join(tmpdir(), 'mislead-realfaces-'));
/** A folder of links to `chosen` and their rows of labels.csv (face boxes included). */
function folder(name: string, chosen: Face[]): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const f of chosen) symlinkSync(join(facesDir, f.file), join(dir, f.file));
  writeFileSync(join(dir, 'labels.csv'), [header, ...chosen.map((f) => f.line)].join('\n') + '\n');
  return dir;
}

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
  const attacked = folder('correct', correct);
  /** The methods, as the command line takes them (sizes in grey levels; the filter is the tutorial's:
   *  1000 steps of lr 0.1, β 0 and β 0.5, toward the other class). */
  const methods: { name: string; args: string[] }[] = [
    ...[1, 2, 4].map((eps) => ({ name: `PGD L∞ ε ${eps}, 40 steps`, args: ['--method', 'pgd', '--eps', String(eps), '--iters', '40'] })),
    { name: 'FGSM L∞ ε 2', args: ['--method', 'fgsm', '--eps', '2'] },
    { name: 'C&W L2', args: ['--method', 'cw'] },
    { name: 'DeepFool', args: ['--method', 'deepfool'] },
    { name: 'filter (tutorial), β 0', args: ['--method', 'filter', '--iters', '1000', '--lr', '0.1', '--beta', '0'] },
    { name: 'filter (tutorial), β 0.5 (L2)', args: ['--method', 'filter', '--iters', '1000', '--lr', '0.1', '--beta', '0.5'] },
  ];
  mkdirSync(sheets, { recursive: true });
  const results = methods.map(({ name, args }, i) => {
    const out = join(work, `attack-${i}`);
    progress(`${name} on ${correct.length} faces…`);
    const { ms: wall } = mislead(['attack', attacked, '--model', model, ...args, '--workers', workers, '--out', out, '--json', '--quiet']);
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
    `Attacks on the ${correct.length} faces it classifies correctly (--workers ${workers}, ${cpus().length} cores); success on the saved 8-bit files; medians over the successes; time per image as each attack reports it:`,
    '',
    '| method | success (saved) | median L2 | median L∞ | PSNR dB | SSIM | ms / image | wall s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.method} | ${pct(r.successSaved)} | ${num(r.medianL2, 1)} | ${num(r.medianLinf, 1)} | ${num(r.medianPsnr, 1)} | ${num(r.medianSsim, 4)} | ${num(r.msPerImage, 0)} | ${num(r.wallMs / 1000, 1)} |`),
    '',
    `PGD-40 (ε 1) on ${pgd.faces} faces: ${num(pgd.wallMs / 1000, 1)} s for the whole command, ${num(pgd100.per100FacesS, 1)} s per 100 faces.`,
    `Contact sheets (not committed): ${results.map((r) => r.sheet).join(', ')}`,
  ];
  console.log(table.join('\n'));
  writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), faces: faces.length, trial, cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, workers: Number(workers), accuracy, attacked: correct.length, methods: results.map(({ sheet: _, ...r }) => r), pgd40: pgd100 }, null, 2) + '\n');
  progress(`Numbers: ${jsonPath}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
