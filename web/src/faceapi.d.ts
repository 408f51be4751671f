// The face-api.js gender network the build converts when the package is installed (vite.config.ts).
declare module 'virtual:faceapi-model' {
  const model: { url: string; source: { name: string; version: string; license: string } } | null;
  export default model;
}
