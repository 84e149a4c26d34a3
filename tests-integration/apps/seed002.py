"""The handlers of seed document 002 ("ASGI fundamentals"), as written there.

Each is served as the whole application by test_asgi_seed002.py, with the server's default
settings. None of them knows the ``lifespan`` scope: each fails it in its own way (sends an
``http.response.start`` or a ``websocket.accept``, raises KeyError or a JSON error after
``receive()``), and the server must carry on without lifespan. Only the indentation (lost
in the seed's text), the imports the seed has elsewhere on its page and one noqa comment
are ours.
"""

import asyncio
import json
import time


async def handle_http(scope, receive, send):
    """Handle HTTP requests"""
    await send({
        'type': 'http.response.start',
        'status': 200,
        'headers': [[b'content-type', b'text/plain']],
    })
    await send({
        'type': 'http.response.body',
        'body': b'Hello World',
    })


async def parse_request_body(scope, receive):
    """Parse request body from ASGI messages"""
    body = b''
    while True:
        message = await receive()
        if message['type'] == 'http.request':
            body += message.get('body', b'')
            if not message.get('more_body', False):
                break
        else:
            break
    return body


async def parse_json_request(scope, receive, send):
    """Parse JSON request body"""
    import json
    try:
        body = await parse_request_body(scope, receive)
        if body:
            data = json.loads(body.decode('utf-8'))
        else:
            data = {}
        # Echo back the JSON data
        response_data = {
            'received': data,
            'method': scope['method'],
            'path': scope['path']
        }
        response_body = json.dumps(response_data).encode('utf-8')
        await send({
            'type': 'http.response.start',
            'status': 200,
            'headers': [[b'content-type', b'application/json']],
        })
        await send({
            'type': 'http.response.body',
            'body': response_body,
        })
    except json.JSONDecodeError:
        await send({
            'type': 'http.response.start',
            'status': 400,
            'headers': [[b'content-type', b'text/plain']],
        })
        await send({
            'type': 'http.response.body',
            'body': b'Invalid JSON',
        })


async def websocket_handler(scope, receive, send):
    """Basic WebSocket handler"""
    # Accept the WebSocket connection
    await send({'type': 'websocket.accept'})
    try:
        while True:
            # Wait for messages from client
            message = await receive()
            if message['type'] == 'websocket.receive':
                # Handle text and binary messages
                if 'text' in message:
                    text = message['text']
                    # Echo back the message
                    await send({
                        'type': 'websocket.send',
                        'text': f'Echo: {text}'
                    })
                elif 'bytes' in message:
                    data = message['bytes']
                    # Echo back binary data
                    await send({
                        'type': 'websocket.send',
                        'bytes': data
                    })
            elif message['type'] == 'websocket.disconnect':
                # Client disconnected
                break
    except Exception as e:
        # Handle errors
        await send({
            'type': 'websocket.close',
            'code': 1011,  # Internal error
            'reason': str(e)
        })


async def user_signup_handler(scope, receive, send):
    """Handle user signup with background email task"""
    body = await parse_request_body(scope, receive)
    data = json.loads(body.decode('utf-8'))
    # Process signup (save to database, etc.)
    user_email = data['email']
    # Add background task for sending welcome email
    background_tasks = scope.get('background_tasks')
    if background_tasks:
        background_tasks(
            send_email,
            user_email,
            'Welcome!',
            'Thank you for signing up!'
        )
    # Send immediate response
    await send({
        'type': 'http.response.start',
        'status': 201,
        'headers': [[b'content-type', b'application/json']],
    })
    await send({
        'type': 'http.response.body',
        'body': json.dumps({'message': 'User created successfully'}).encode('utf-8'),
    })


async def send_email(to_email, subject, body):
    """Simulate sending email"""
    await asyncio.sleep(2)  # Simulate network delay
    print(f"Email sent to {to_email}: {subject}")


async def sse_handler(scope, receive, send):
    """Server-Sent Events handler"""
    await send({
        'type': 'http.response.start',
        'status': 200,
        'headers': [
            [b'content-type', b'text/event-stream'],
            [b'cache-control', b'no-cache'],
            [b'connection', b'keep-alive'],
            [b'access-control-allow-origin', b'*'],
        ],
    })
    # Send initial connection message
    await send({
        'type': 'http.response.body',
        'body': f'data: {json.dumps({"type": "connected", "timestamp": time.time()})}\n\n'.encode(),
        'more_body': True,
    })
    # Send periodic updates
    counter = 0
    while True:
        try:
            counter += 1
            data = {
                'type': 'update',
                'counter': counter,
                'timestamp': time.time(),
                'message': f'Update #{counter}'
            }
            message = f'data: {json.dumps(data)}\n\n'
            await send({
                'type': 'http.response.body',
                'body': message.encode(),
                'more_body': True,
            })
            await asyncio.sleep(1)  # Send update every second
        except Exception as e:  # noqa: F841 (as in the seed)
            # Client disconnected
            break
    # End the response
    await send({
        'type': 'http.response.body',
        'body': b'',
        'more_body': False,
    })
