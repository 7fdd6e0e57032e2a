// Apollo Gateway on Vitrina's supergraph and subgraphs: the competitor most teams would
// otherwise run. Started by the load harness (bench/src/run.rs), never in production.
// Node's own HTTP server with Apollo Server's integration API, so the only work measured
// is the gateway's.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';

const subgraphUrls = {
  identity: process.env.IDENTITY_URL,
  catalog: process.env.CATALOG_URL,
  cart: process.env.CART_URL,
  orders: process.env.ORDERS_URL,
};

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(process.env.SUPERGRAPH_FILE, 'utf8'),
  buildService({ name, url }) {
    return new RemoteGraphQLDataSource({
      url: subgraphUrls[name] ?? url,
      // Subgraphs validate the caller's token themselves, as behind our router.
      willSendRequest({ request, context }) {
        if (context.authorization) request.http.headers.set('authorization', context.authorization);
      },
    });
  },
});

const server = new ApolloServer({ gateway, introspection: false });
await server.start();

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, 'http://gateway');
    if (url.pathname === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    if (url.pathname !== '/graphql') {
      res.writeHead(404);
      res.end();
      return;
    }
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    let body;
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"errors":[{"message":"malformed JSON"}]}');
      return;
    }
    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers.set(name, value);
    }
    const result = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method.toUpperCase(), headers, search: url.search, body },
      context: async () => ({ authorization: req.headers.authorization }),
    });
    for (const [name, value] of result.headers) res.setHeader(name, value);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') {
      res.end(result.body.string);
    } else {
      for await (const chunk of result.body.asyncIterator) res.write(chunk);
      res.end();
    }
  })
  .listen(Number(process.env.PORT), '127.0.0.1');
