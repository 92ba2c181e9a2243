// js-ipfs 0.66 calls Promise.withResolvers, which Node gained in 22. Loaded with
// `node -r ./polyfill.cjs` so the machine's Node 20 runs the daemon; a no-op on Node >= 22.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
